package policytest

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/check"
	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// copyServices copies services/ (chart, catalog, kustomization) into <dir>/services, so that a
// test can change the catalog and render it without touching the repository.
func copyServices(tb testing.TB, dir string) {
	tb.Helper()
	require.NoError(tb, os.CopyFS(filepath.Join(dir, "services"), os.DirFS("../services")))
}

// renderServices builds <dir>/services as the services Application builds it (kustomize with
// Helm inflation, the helm binary make verify built).
func renderServices(tb testing.TB, dir string) []*unstructured.Unstructured {
	tb.Helper()
	helmBin := os.Getenv("HELM")
	if helmBin == "" {
		tb.Fatal("HELM is not set: run the tests with `make verify`")
	}
	k := krusty.MakeDefaultOptions()
	k.PluginConfig = types.EnabledPluginConfig(types.BploUseStaticallyLinked)
	k.PluginConfig.HelmConfig.Command = helmBin
	k.PluginConfig.HelmConfig.KubeVersion = KubeVersion + ".0"
	objs, err := render.Kustomize(k, filepath.Join(dir, "services"))
	require.NoError(tb, err)
	return objs
}

// editEntry rewrites the catalog entry services.<name> in <dir>/services/<name>/values.yaml.
func editEntry(tb testing.TB, dir, name string, edit func(entry map[string]any)) {
	tb.Helper()
	file := filepath.Join(dir, "services", name, "values.yaml")
	data, err := os.ReadFile(file)
	require.NoError(tb, err)
	var v map[string]map[string]map[string]any
	require.NoError(tb, yaml.Unmarshal(data, &v))
	edit(v["services"][name])
	out, err := yaml.Marshal(v)
	require.NoError(tb, err)
	require.NoError(tb, os.WriteFile(file, out, 0o644))
}

// TestOneCallOnePlace: adding ONE name to ONE service's `calls` (a call the catalog does not
// have) opens exactly that path — the caller's NetworkPolicy egress and Sidecar host, the
// callee's NetworkPolicy ingress and AuthorizationPolicy principal — and changes nothing else:
// no other call opens, and no other rendered object changes.
func TestOneCallOnePlace(t *testing.T) {
	dir := t.TempDir()
	copyServices(t, dir)
	before := renderServices(t, dir)
	cat, err := check.LoadCatalog(dir)
	require.NoError(t, err)
	caller, callee := newCall(cat)
	require.NotEmpty(t, caller, "the catalog already has every call")

	editEntry(t, dir, caller, func(e map[string]any) {
		calls, _ := e["calls"].([]any)
		e["calls"] = append(calls, callee)
	})
	after := renderServices(t, dir)

	cat2, err := check.LoadCatalog(dir)
	require.NoError(t, err)
	added := check.Call{Caller: caller, Callee: callee}
	t.Logf("adding the call %s in %s", added, filepath.Join("services", caller, "values.yaml"))
	assert.Equal(t, []string{added.String()}, newCalls(cat.Calls(), cat2.Calls()), "catalog")
	readers := map[string]func([]*unstructured.Unstructured) []check.Call{
		"NetworkPolicy": func(o []*unstructured.Unstructured) []check.Call { return check.NetworkPolicyCalls(o, appNamespace) },
		"AuthorizationPolicy": func(o []*unstructured.Unstructured) []check.Call {
			return check.AuthorizationPolicyCalls(o, appNamespace, "cluster.local")
		},
		"Sidecar": func(o []*unstructured.Unstructured) []check.Call { return check.SidecarCalls(o, appNamespace) },
	}
	for kind, read := range readers {
		b, a := read(before), read(after)
		assert.Equal(t, []string{added.String()}, newCalls(b, a), "%s: calls opened by the change", kind)
		assert.Empty(t, newCalls(a, b), "%s: calls closed by the change", kind)
	}
	want := []string{
		"AuthorizationPolicy/" + callee, // the callee admits the caller's principal
		"NetworkPolicy/" + callee,       // the callee's ingress admits the caller's pods
		"NetworkPolicy/" + caller,       // the caller's egress reaches the callee's pods
		"Sidecar/" + caller,             // the caller's proxy knows the callee's host
	}
	sort.Strings(want)
	assert.Equal(t, want, changedObjects(before, after), "objects changed by one call")
}

// newCall picks a call the catalog does not have: the first pair of services, by name, where
// the first does not call the second.
func newCall(c *check.Catalog) (caller, callee string) {
	names := c.Names()
	sort.Strings(names)
	for _, a := range names {
		for _, b := range names {
			if s, _ := c.Service(a); a != b && !slices.Contains(s.Calls, b) {
				return a, b
			}
		}
	}
	return "", ""
}

// newCalls lists, as "A->B", the calls in after that are not in before.
func newCalls(before, after []check.Call) []string {
	had := map[check.Call]bool{}
	for _, e := range before {
		had[e] = true
	}
	out := []string{}
	for _, e := range after {
		if !had[e] {
			out = append(out, e.String())
		}
	}
	return out
}

// changedObjects lists, as "Kind/name" sorted, the objects added, removed or changed.
func changedObjects(before, after []*unstructured.Unstructured) []string {
	key := func(o *unstructured.Unstructured) string { return fmt.Sprintf("%s/%s", o.GetKind(), o.GetName()) }
	b := map[string]*unstructured.Unstructured{}
	for _, o := range before {
		b[key(o)] = o
	}
	out := []string{}
	seen := map[string]bool{}
	for _, o := range after {
		k := key(o)
		seen[k] = true
		if old, ok := b[k]; !ok || !reflect.DeepEqual(old.Object, o.Object) {
			out = append(out, k)
		}
	}
	for k := range b {
		if !seen[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
