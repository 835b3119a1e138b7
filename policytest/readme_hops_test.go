package policytest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/layout"
	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
)

// maxHops is README's promise ("How far an object is from its environment"): every object a
// cluster renders from this repository is written at most this many kustomization references
// from its Application's folder clusters/<env>/<application>/ (layout.Hops counts them).
const maxHops = 3

// objectHops measures every object an Application built with kustomize from its source path(s):
// the fewest references from one of them to where kustomize read the object (its origin).
// It returns the hops per object, in order.
func objectHops(t *testing.T, repoRoot string, paths []string, objs []*unstructured.Unstructured, origins []render.Origin) []int {
	t.Helper()
	require.Len(t, origins, len(objs), "%v: every object needs its origin (rendered/<env>/origins.json: render again)", paths)
	var from []map[string]int
	for _, p := range paths {
		h, err := layout.Hops(repoRoot, p)
		require.NoError(t, err)
		from = append(from, h)
	}
	out := make([]int, len(objs))
	for i, o := range origins {
		best := -1
		for _, h := range from {
			if n, err := layout.ObjectHops(h, o); err == nil && (best < 0 || n < best) {
				best = n
			}
		}
		require.GreaterOrEqual(t, best, 0, "%s %s/%s: its origin %+v is reached from none of %v", objs[i].GetKind(), objs[i].GetNamespace(), objs[i].GetName(), o, paths)
		out[i] = best
	}
	return out
}

// sourcePaths are the repository paths an Application builds with kustomize.
func sourcePaths(a *render.App) []string {
	var out []string
	for _, s := range a.Application.Spec.GetSources() {
		if s.Path != "" && s.Chart == "" {
			out = append(out, s.Path)
		}
	}
	return out
}

// TestObjectsWithinThreeReferences: README's hop rule holds for every object of every cluster —
// the bootstrap's (from clusters/<env>/bootstrap), the root's and every repository-path
// Application's — measured from kustomize's own record of where it read each object; an
// upstream chart's Application names its values files directly, in platform/<app>/ or
// clusters/<env>/values/. The examples README gives are measured too.
func TestObjectsWithinThreeReferences(t *testing.T) {
	count := map[int]int{}
	for _, c := range repo(t).Clusters {
		boot := objectHops(t, "..", []string{render.BootstrapPath(c.Name)}, c.Bootstrap, c.BootstrapOrigins)
		for i, n := range boot {
			count[n]++
			assert.LessOrEqual(t, n, maxHops, "%s: bootstrap %s/%s", c.Name, c.Bootstrap[i].GetKind(), c.Bootstrap[i].GetName())
		}
		for _, a := range c.AllApps() {
			if a.Chart != nil {
				for _, vf := range a.ValueFiles {
					dir := filepath.ToSlash(filepath.Dir(vf))
					assert.True(t, dir == "platform/"+a.Name() || dir == "clusters/"+c.Name+"/values",
						"%s/%s: values file %s is neither platform/%s/ nor clusters/%s/values/", c.Name, a.Name(), vf, a.Name(), c.Name)
				}
				continue
			}
			for i, n := range objectHops(t, "..", sourcePaths(a), a.Objects, a.Origins) {
				count[n]++
				o := a.Objects[i]
				assert.LessOrEqual(t, n, maxHops, "%s/%s: %s %s/%s is %d references from %v (origin %+v): README promises at most %d",
					c.Name, a.Name(), o.GetKind(), o.GetNamespace(), o.GetName(), n, sourcePaths(a), a.Origins[i], maxHops)
			}
		}
	}
	var hist []string
	for n, k := range count {
		hist = append(hist, fmt.Sprintf("%d references: %d objects", n, k))
	}
	sort.Strings(hist)
	t.Logf("objects of every cluster by kustomization references from their Application's folder: %v", hist)
	assert.NotZero(t, count[maxHops], "no object is %d references away: README's rule can be tightened", maxHops)

	// README's examples, from clusters/prod/.
	for _, ex := range []struct {
		app, kind, namespace, name string
		hops                       int
	}{
		{"data-kafka", "StatefulSet", dataNamespace, "kafka-broker", 1},
		{"services", "Deployment", appNamespace, "order", 2},
		{"platform", "NetworkPolicy", appNamespace, "default-deny", 3},
	} {
		found := false
		for _, c := range repo(t).Clusters {
			for _, a := range c.AllApps() {
				if c.Name != "prod" || a.Name() != ex.app {
					continue
				}
				hops := objectHops(t, "..", sourcePaths(a), a.Objects, a.Origins)
				for i, o := range a.Objects {
					if o.GetKind() == ex.kind && o.GetNamespace() == ex.namespace && o.GetName() == ex.name {
						found = true
						assert.Equal(t, ex.hops, hops[i], "README: prod's %s %s/%s is %d references from clusters/prod/", ex.kind, ex.namespace, ex.name, ex.hops)
					}
				}
			}
		}
		assert.True(t, found, "README's example %s %s/%s of %s is not rendered in prod", ex.kind, ex.namespace, ex.name, ex.app)
	}
}

// TestHopsAreMeasured proves the measure can fail: in a miniature repository whose ConfigMap is
// four references from clusters/x/app/ (app → base → base/parts → blocks/rails → blocks/cm),
// the ConfigMap measures 4, a file of the app's own folder 0, and a chart's object one more than
// the kustomization that inflates it.
func TestHopsAreMeasured(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"clusters/x/app/kustomization.yaml": "resources: [../../../base, own.yaml]\n",
		"clusters/x/app/own.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: own}\n",
		"base/kustomization.yaml":           "resources: [parts]\n",
		"base/parts/kustomization.yaml":     "resources: [../../blocks/rails]\n",
		"blocks/rails/kustomization.yaml":   "resources: [../cm]\n",
		"blocks/cm/kustomization.yaml":      "resources: [cm.yaml]\n",
		"blocks/cm/cm.yaml":                 "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\n",
	}
	for p, content := range files {
		require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, p), []byte(content), 0o644))
	}
	objs, origins, err := render.KustomizeOrigins(krusty.MakeDefaultOptions(), root, filepath.Join(root, "clusters/x/app"))
	require.NoError(t, err)
	hops := objectHops(t, root, []string{"clusters/x/app"}, objs, origins)
	got := map[string]int{}
	for i, o := range objs {
		got[o.GetName()] = hops[i]
		assert.Empty(t, o.GetAnnotations(), "the origin annotation is removed again")
	}
	assert.Equal(t, map[string]int{"deep": 4, "own": 0}, got)
	assert.Greater(t, got["deep"], maxHops, "the fixture must break README's rule")

	h, err := layout.Hops(root, "clusters/x/app")
	require.NoError(t, err)
	n, err := layout.ObjectHops(h, render.Origin{ConfiguredIn: "base/parts/kustomization.yaml", Generator: "HelmChartInflationGenerator"})
	require.NoError(t, err)
	assert.Equal(t, 3, n, "a chart inflated in base/parts (2) is one reference further")
	_, err = layout.ObjectHops(h, render.Origin{Path: "elsewhere/x.yaml"})
	assert.Error(t, err, "a folder the Application does not reach")
}
