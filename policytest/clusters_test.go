package policytest

import (
	"context"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/check"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClusters is the gate: every stage of the verification, for every cluster, finds nothing.
// Each finding is one line: <cluster>/<application>: <Kind>/<namespace>/<name>: <what to fix>.
func TestClusters(t *testing.T) {
	r := repo(t)
	names := []string{}
	for _, c := range r.Clusters {
		names = append(names, c.Name)
	}
	require.Equal(t, []string{"dev", "prod", "staging"}, names, "every environment has clusters/<env>/root-app.yaml")
	for _, s := range r.Stages {
		t.Run(s.Name, func(t *testing.T) {
			for _, f := range s.Findings {
				t.Error(f.String())
			}
		})
	}
}

// TestRegoPolicies runs policy/*_test.rego exactly as `opa test policy/` does.
func TestRegoPolicies(t *testing.T) {
	passed, failed, err := check.RegoTests(context.Background(), "../policy")
	require.NoError(t, err)
	for _, f := range failed {
		t.Error(f)
	}
	// Every policy file has tests that reject a bad object; a policy package without any would
	// make this number drop rather than fail, so keep a floor that grows with the policies.
	assert.GreaterOrEqual(t, passed, 50, "Rego tests passed")
	t.Logf("%d Rego tests passed", passed)
}
