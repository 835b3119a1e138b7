package policytest

import (
	"testing"

	"github.com/cloudlab/platform/policytest/internal/check"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The service catalog (docs/services.md, from the architecture's section 5): every call that is
// allowed. Written out here, independently of the service folders, so that a values change
// which opens a call shows up as a test failure to review.
var catalogEdges = []string{
	// the ingress gateway, for the nine public routes
	"gateway->analytics", "gateway->auth", "gateway->cart", "gateway->order", "gateway->product",
	"gateway->recommendation", "gateway->search", "gateway->shipping", "gateway->user",
	// service to service
	"auth->user", "cart->product", "notification->user", "recommendation->product",
	"order->cart", "order->inventory", "order->payment", "order->product", "order->user",
}

const appNamespace = "cloudlab"

// TestCatalogEdges: in every cluster, the calls the NetworkPolicies allow, the calls the
// AuthorizationPolicies allow and the calls the service folders declare are the same set, and
// that set is the catalog.
func TestCatalogEdges(t *testing.T) {
	services, err := check.LoadServices("..")
	require.NoError(t, err)
	declared, problems := check.DeclaredEdges(services)
	assert.Empty(t, problems, "service folders disagree about their calls")
	assert.ElementsMatch(t, catalogEdges, check.EdgeStrings(declared), "declared calls = the catalog")

	for _, c := range repo(t).Clusters {
		network := check.NetworkEdges(c, appNamespace, 8080)
		mesh := check.MeshEdges(c, appNamespace, "cluster.local", 8080)
		assert.Equal(t, check.EdgeStrings(declared), check.EdgeStrings(network),
			"%s: NetworkPolicies allow exactly the declared calls (extra: %s; missing: %s)", c.Name, check.Difference(network, declared), check.Difference(declared, network))
		assert.Equal(t, check.EdgeStrings(declared), check.EdgeStrings(mesh),
			"%s: AuthorizationPolicies allow exactly the declared calls (extra: %s; missing: %s)", c.Name, check.Difference(mesh, declared), check.Difference(declared, mesh))
	}
}

// TestServicesPerCluster: twelve Deployments in cloudlab everywhere; prod has every object kind
// per service; dev has no autoscaler or disruption budget for them.
func TestServicesPerCluster(t *testing.T) {
	services, err := check.LoadServices("..")
	require.NoError(t, err)
	require.Len(t, services, 12, "the catalog has twelve services")
	for _, c := range repo(t).Clusters {
		kinds := map[string]map[string]bool{} // kind -> service names
		for _, a := range c.AllApps() {
			for _, o := range a.Objects {
				if o.GetNamespace() != appNamespace {
					continue
				}
				if kinds[o.GetKind()] == nil {
					kinds[o.GetKind()] = map[string]bool{}
				}
				kinds[o.GetKind()][o.GetLabels()["app.kubernetes.io/name"]] = true
			}
		}
		assert.Len(t, kinds["Deployment"], 12, "%s: Deployments in cloudlab", c.Name)
		want := []string{"Deployment", "Service", "ServiceAccount", "NetworkPolicy", "AuthorizationPolicy", "Sidecar", "DestinationRule", "ServiceMonitor"}
		if c.Name == "dev" {
			assert.Empty(t, kinds["HorizontalPodAutoscaler"], "dev has no HPA")
			assert.Empty(t, kinds["PodDisruptionBudget"], "dev has no PDB")
		} else {
			want = append(want, "HorizontalPodAutoscaler", "PodDisruptionBudget")
		}
		for _, s := range services {
			for _, k := range want {
				assert.True(t, kinds[k][s.Name], "%s: %s has no %s", c.Name, s.Name, k)
			}
		}
	}
}
