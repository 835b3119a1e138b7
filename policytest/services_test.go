package policytest

import (
	"os"
	"strings"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/check"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const appNamespace = "cloudlab"

// catalog reads the service catalog (services/<name>/values.yaml, listed in
// services/kustomization.yaml): the one place a call is written.
func catalog(t *testing.T) *check.Catalog {
	t.Helper()
	c, err := check.LoadCatalog("..")
	require.NoError(t, err)
	return c
}

// TestCatalogLayout: one folder per service, each listed once in services/kustomization.yaml
// and holding exactly the entry named after it; twelve services.
func TestCatalogLayout(t *testing.T) {
	c := catalog(t)
	assert.Empty(t, c.Problems, "catalog layout")
	assert.Len(t, c.Services, 12, "the catalog has twelve services")
}

// TestCatalogCalls: in every cluster, the calls the NetworkPolicies allow (both ends), the calls
// the AuthorizationPolicies allow and the calls the Sidecars let a proxy make are exactly the
// catalog's (the gateway has no Sidecar of ours).
func TestCatalogCalls(t *testing.T) {
	want := catalog(t).Calls()
	require.NotEmpty(t, want)
	var services []check.Call
	for _, e := range want {
		if e.Caller != check.Gateway {
			services = append(services, e)
		}
	}
	for _, c := range repo(t).Clusters {
		objs := check.AllObjects(c)
		for kind, got := range map[string][]check.Call{
			"NetworkPolicies":       check.NetworkPolicyCalls(objs, appNamespace),
			"AuthorizationPolicies": check.AuthorizationPolicyCalls(objs, appNamespace, "cluster.local"),
		} {
			assert.Equal(t, check.CallStrings(want), check.CallStrings(got),
				"%s: %s allow exactly the catalog's calls (extra: %s; missing: %s)", c.Name, kind, check.Difference(got, want), check.Difference(want, got))
		}
		got := check.SidecarCalls(objs, appNamespace)
		assert.Equal(t, check.CallStrings(services), check.CallStrings(got),
			"%s: Sidecars reach exactly the catalog's callees (extra: %s; missing: %s)", c.Name, check.Difference(got, services), check.Difference(services, got))
	}
}

// TestServicesPerCluster: one Deployment per catalog service in cloudlab everywhere; prod has
// every object kind per service; dev has no autoscaler or disruption budget for them.
func TestServicesPerCluster(t *testing.T) {
	services := catalog(t).Names()
	for _, c := range repo(t).Clusters {
		kinds := map[string]map[string]bool{} // kind -> service names
		for _, o := range check.AllObjects(c) {
			if o.GetNamespace() != appNamespace {
				continue
			}
			if kinds[o.GetKind()] == nil {
				kinds[o.GetKind()] = map[string]bool{}
			}
			kinds[o.GetKind()][o.GetLabels()["app.kubernetes.io/name"]] = true
		}
		assert.Len(t, kinds["Deployment"], len(services), "%s: Deployments in cloudlab", c.Name)
		want := []string{"Deployment", "Service", "ServiceAccount", "NetworkPolicy", "AuthorizationPolicy", "Sidecar", "DestinationRule", "ServiceMonitor"}
		if c.Name == "dev" {
			assert.Empty(t, kinds["HorizontalPodAutoscaler"], "dev has no HPA")
			assert.Empty(t, kinds["PodDisruptionBudget"], "dev has no PDB")
		} else {
			want = append(want, "HorizontalPodAutoscaler", "PodDisruptionBudget")
		}
		for _, s := range services {
			for _, k := range want {
				assert.True(t, kinds[k][s], "%s: %s has no %s", c.Name, s, k)
			}
		}
	}
}

// The catalog table of docs/services.md sits between these markers; TestServicesDocTable
// regenerates it when UPDATE_DOCS=1 (`make docs`).
const (
	docTableBegin = "<!-- catalog table: generated from services/*/values.yaml by `make docs`; do not edit -->\n"
	docTableEnd   = "<!-- end of catalog table -->\n"
)

// TestServicesDocTable: the catalog table in docs/services.md is the catalog's (a call added in a
// values file and not in the docs fails here, with the command that fixes it).
func TestServicesDocTable(t *testing.T) {
	generatedPart(t, "../docs/services.md", docTableBegin, docTableEnd, catalog(t).MarkdownTable(), "the catalog table")
}

// generatedPart checks that the part of doc between the markers begin and end is want; with
// UPDATE_DOCS=1 (`make docs`) it writes want there instead. what names the part in messages.
func generatedPart(t *testing.T, doc, begin, end, want, what string) {
	t.Helper()
	data, err := os.ReadFile(doc)
	require.NoError(t, err)
	text := string(data)
	b, e := strings.Index(text, begin), strings.Index(text, end)
	require.True(t, b >= 0 && e > b, "%s: the markers of %s are missing", doc, what)
	got := text[b+len(begin) : e]
	if os.Getenv("UPDATE_DOCS") == "1" && got != want {
		text = text[:b+len(begin)] + want + text[e:]
		require.NoError(t, os.WriteFile(doc, []byte(text), 0o644))
		t.Logf("%s: %s regenerated", doc, what)
		return
	}
	assert.Equal(t, want, got, "%s: %s differs from the repository: run `make docs`", doc, what)
}
