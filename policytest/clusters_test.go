package policytest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/check"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClusters is the gate: every stage of the verification, for every cluster, finds nothing.
// Each finding is one line: <cluster>/<application>: <Kind>/<namespace>/<name>: <what to fix>.
func TestClusters(t *testing.T) {
	r := verified(t)
	names := []string{}
	for _, c := range r.Clusters {
		names = append(names, c.Name)
	}
	require.Equal(t, []string{"dev", "prod", "staging"}, names, "every environment has clusters/<env>/bootstrap")
	for _, s := range r.Stages {
		t.Run(s.Name, func(t *testing.T) {
			for _, f := range s.Findings {
				t.Error(f.String())
			}
		})
	}
}

// TestRegoPolicies runs policy/*_test.rego exactly as `opa test policy/` does, and requires
// every policy/<name>.rego to have its own tests (a passing object and a rejected one at least).
func TestRegoPolicies(t *testing.T) {
	passed, failed, err := check.RegoTests(context.Background(), "../policy")
	require.NoError(t, err)
	for _, f := range failed {
		t.Error(f)
	}
	policies, err := filepath.Glob("../policy/*.rego")
	require.NoError(t, err)
	total, count := 0, 0
	for _, p := range policies {
		name := strings.TrimSuffix(filepath.Base(p), ".rego")
		if strings.HasSuffix(name, "_test") {
			continue
		}
		n := passed["data.cloudlab."+name+"_test"]
		assert.GreaterOrEqual(t, n, 2, "policy/%s.rego needs policy/%s_test.rego with a passing and a rejected object", name, name)
		total += n
		count++
	}
	t.Logf("%d Rego tests passed for %d policies", total, count)
}
