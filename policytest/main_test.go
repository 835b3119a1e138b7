// Package policytest proves the repository before it merges: every cluster is rendered the way
// Argo CD renders it, and every object is validated and judged by the policies in policy/.
// Run it with `make verify` (which builds the tools and passes their paths); docs/verify.md
// explains each check and how to read a failure.
package policytest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/check"
	"github.com/stretchr/testify/require"
)

// KubeVersion is the oldest Kubernetes the platform supports; objects must be valid there.
const KubeVersion = "1.32"

// config is the verification of a repository root with the tools make verify built.
func config(t *testing.T, repoRoot string) check.Config {
	t.Helper()
	tool := func(env string) string {
		p := os.Getenv(env)
		if p == "" {
			t.Fatalf("%s is not set: run the tests with `make verify`, which builds the tools and sets it", env)
		}
		return p
	}
	abs, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	charts, err := filepath.Abs("charts")
	require.NoError(t, err)
	return check.Config{
		RepoRoot:    abs,
		PolicyDir:   filepath.Join("..", "policy"),
		ChartDir:    charts, // the fixture repositories render this repository's vendored charts
		Helm:        tool("HELM"),
		Validator:   tool("KUBECTL_VALIDATE"),
		KubeVersion: KubeVersion,
	}
}

var (
	repoOnce, checkOnce sync.Once
	repoReport          *check.Report
	repoErr, checkErr   error
)

// repo loads this repository's clusters once per test binary (the render stage): for the tests
// that read the rendered objects. With RENDERED set (make verify sets it after its render stage),
// they are read from that folder instead of being rendered a second time.
func repo(t *testing.T) *check.Report {
	t.Helper()
	cfg := config(t, "..")
	if dir := os.Getenv("RENDERED"); dir != "" {
		abs, err := filepath.Abs(filepath.Join("..", dir))
		require.NoError(t, err)
		cfg.Rendered = abs
	}
	repoOnce.Do(func() { repoReport, repoErr = check.Load(cfg) })
	require.NoError(t, repoErr)
	return repoReport
}

// verified is repo with every check run once (structure, quota, schema, policy): for the tests
// that read the findings.
func verified(t *testing.T) *check.Report {
	t.Helper()
	r := repo(t)
	checkOnce.Do(func() {
		checkErr = r.Check(context.Background(), config(t, ".."))
		if checkErr == nil {
			for _, s := range r.Stages {
				note := ""
				if s.Note != "" {
					note = " (" + s.Note + ")"
				}
				fmt.Printf("verify: stage %-15s %6.2fs  %d findings%s\n", s.Name, s.Took.Seconds(), len(s.Findings), note)
			}
		}
	})
	require.NoError(t, checkErr)
	return r
}
