package policytest

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/check"
	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBrokenFixture proves the harness can fail: it verifies the deliberately broken repository
// in testdata/broken and asserts that it reports exactly expected-findings.txt. A check that
// stops firing (or changes its message) fails here.
func TestBrokenFixture(t *testing.T) {
	report, err := check.Verify(context.Background(), config(t, "testdata/broken"))
	require.NoError(t, err)
	var got []string
	checks := map[string]bool{render.CheckRender: true, check.CheckStructure: true, check.CheckQuota: true, check.CheckSchema: true}
	policies, err := filepath.Glob("../policy/*.rego")
	require.NoError(t, err)
	for _, p := range policies {
		if name := strings.TrimSuffix(filepath.Base(p), ".rego"); !strings.HasSuffix(name, "_test") {
			checks[name] = true
		}
	}
	seen := map[string]bool{}
	for _, f := range report.Findings() {
		got = append(got, f.String())
		// README's finding format: "<cluster>/<application>: <Kind>/<namespace>/<name>: <check>: ..."
		// where <check> is a policy file's name or one of the Go checks.
		assert.True(t, checks[f.Check], "finding %q: its check %q is neither a Go check nor a policy/<check>.rego", f, f.Check)
		seen[f.Check] = true
	}
	sort.Strings(got)
	for c := range checks {
		assert.True(t, seen[c], "no finding on testdata/broken comes from check %q", c)
	}

	data, err := os.ReadFile("testdata/broken/expected-findings.txt")
	require.NoError(t, err)
	var want []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			want = append(want, line)
		}
	}
	sort.Strings(want)
	assert.Equal(t, want, got, "findings on testdata/broken (update expected-findings.txt only after reading the difference)")

	kinds := []string{
		"does not exist", "not an exact version", "does not build", // render
		"not a value of gateway 1.30.3", "values don't meet the specifications of the schema", // upstream chart values
		"sync-wave", "does not exist: add an AppProject", "is not created by platform/namespaces",
		"does not permit", "is a wildcard", "only the platform project", "none of its Applications deploys",
		"syncPolicy.automated is missing", "must sync later", "no child Application in wave",
		"no Application of this cluster installs the CRDs",                                                    // Argo CD structure
		"schema: Kubernetes 1.32: spec.template.spec.containers[0].imagePullPolicyy", "apiVersion not served", // schema
	}
	// Every kind of check must be represented, so the golden file cannot quietly lose one: the
	// Go checks by their wording (above), every check by its name (the loop over the findings).
	for _, kind := range kinds {
		found := false
		for _, line := range got {
			found = found || strings.Contains(line, kind)
		}
		assert.True(t, found, "no finding on testdata/broken contains %q", kind)
	}
}
