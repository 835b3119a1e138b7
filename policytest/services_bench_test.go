package policytest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/check"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// BenchmarkServicesRender renders the services Application as Argo CD builds it (kustomize with
// Helm inflation, one helm process) for the catalog as it is and grown to 48 services, side by
// side, so that the cost of one more service shows (ms/service): `make bench-services`.
func BenchmarkServicesRender(b *testing.B) {
	for _, n := range []int{12, 48} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			copyServices(b, dir)
			growCatalog(b, dir, n)
			deployments := 0
			for b.Loop() {
				deployments = 0
				for _, o := range renderServices(b, dir) {
					if o.GetKind() == "Deployment" {
						deployments++
					}
				}
			}
			require.Equal(b, n, deployments, "Deployments rendered")
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N)/float64(n), "ms/service")
		})
	}
}

// growCatalog adds generated entries to the catalog copy in <dir>/services until it has n
// services: x<i>-<name> copies the entry of <name> (same stores and calls, so the call graph
// grows too), with the public route /api/x<i>-<name> when the original has one, each in its own
// folder and listed in the kustomization like a real service.
func growCatalog(tb testing.TB, dir string, n int) {
	tb.Helper()
	cat, err := check.LoadCatalog(dir)
	require.NoError(tb, err)
	base := cat.Services
	kfile := filepath.Join(dir, filepath.FromSlash(check.CatalogKustomization))
	var k map[string]any
	data, err := os.ReadFile(kfile)
	require.NoError(tb, err)
	require.NoError(tb, yaml.Unmarshal(data, &k))
	chart := k["helmCharts"].([]any)[0].(map[string]any)
	files := chart["additionalValuesFiles"].([]any)
	for i := 0; len(base)+i < n; i++ {
		src := base[i%len(base)]
		name := fmt.Sprintf("x%d-%s", i+1, src.Name)
		var v map[string]map[string]map[string]any
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(src.File)))
		require.NoError(tb, err)
		require.NoError(tb, yaml.Unmarshal(data, &v))
		entry := v["services"][src.Name]
		if route, ok := entry["publicRoute"].(map[string]any); ok {
			route["prefix"] = "/api/" + name
		}
		out, err := yaml.Marshal(map[string]any{"services": map[string]any{name: entry}})
		require.NoError(tb, err)
		require.NoError(tb, os.MkdirAll(filepath.Join(dir, "services", name), 0o755))
		require.NoError(tb, os.WriteFile(filepath.Join(dir, "services", name, "values.yaml"), out, 0o644))
		files = append(files, name+"/values.yaml")
	}
	chart["additionalValuesFiles"] = files
	out, err := yaml.Marshal(k)
	require.NoError(tb, err)
	require.NoError(tb, os.WriteFile(kfile, out, 0o644))
}
