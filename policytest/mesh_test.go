package policytest

import (
	"maps"
	"regexp"
	"sort"
	"strconv"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/check"
	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func objectsOf(c *render.Cluster, kind, namespace string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, a := range c.AllApps() {
		for _, o := range a.Objects {
			if o.GetKind() == kind && (namespace == "" || o.GetNamespace() == namespace) {
				out = append(out, o)
			}
		}
	}
	return out
}

// TestPublicRoutes: in every cluster, the ingress gateway serves exactly the catalog's public
// routes, each to the Service of the entry that declares it on its application port: the edge
// VirtualService (platform/mesh) delegates to the one the services chart renders, and every
// delegated route lies inside its parent, so istiod keeps it.
func TestPublicRoutes(t *testing.T) {
	want := map[string]check.PublicRoute{}
	for _, s := range catalog(t).Services {
		if s.PublicRoute != "" {
			want[s.PublicRoute] = check.PublicRoute{Prefix: s.PublicRoute, Host: s.Name + ".cloudlab.svc.cluster.local", Port: 8080}
		}
	}
	require.NotEmpty(t, want, "the catalog has public routes")
	for _, c := range repo(t).Clusters {
		require.Len(t, objectsOf(c, "VirtualService", "istio-ingress"), 1, "%s: one edge VirtualService", c.Name)
		got, problems := check.PublicRoutes(check.AllObjects(c), "istio-ingress")
		assert.Empty(t, problems, "%s: routes Istio would not serve as written", c.Name)
		// and Kibana's, for operators, where the cluster runs it (kibana_edge_test.go)
		if _, runsKibana := kibanaEdgeProblems(check.AllObjects(c)); runsKibana {
			want := maps.Clone(want)
			want[kibanaPrefix] = kibanaRoute
			assert.Equal(t, want, got, "%s: public routes = the catalog's and Kibana's", c.Name)
			continue
		}
		assert.Equal(t, want, got, "%s: public routes = the catalog's", c.Name)
	}
}

// TestEdgeRequiresJWT evaluates the gateway's authorization for requests to every public route
// of the catalog: without a token everything but auth's route (sign-in) is denied; with a token
// everything is allowed except analytics' route without the admin role. The services are named,
// not their paths, so that moving a route in the catalog without moving the gateway's rule
// (platform/mesh/authorizationpolicy-edge-*.yaml) fails here instead of opening it.
func TestEdgeRequiresJWT(t *testing.T) {
	services := catalog(t).Services
	for _, c := range repo(t).Clusters {
		aps := objectsOf(c, "AuthorizationPolicy", "istio-ingress")
		require.NotEmpty(t, objectsOf(c, "RequestAuthentication", "istio-ingress"), "%s: RequestAuthentication at the gateway", c.Name)
		user := map[string][]string{"roles": {"customer"}}
		admin := map[string][]string{"roles": {"customer", "admin"}}
		for _, s := range services {
			if s.PublicRoute == "" {
				continue
			}
			for _, path := range []string{s.PublicRoute, s.PublicRoute + "/42"} {
				denied, _ := check.Denied(aps, check.Request{Path: path})
				assert.Equal(t, s.Name != "auth", denied, "%s: %s (%s) without a token", c.Name, path, s.Name)
				denied, by := check.Denied(aps, check.Request{Path: path, Principal: "https://auth/alice", Claims: user})
				assert.Equal(t, s.Name == "analytics", denied, "%s: %s (%s) with a customer token (denied by %q)", c.Name, path, s.Name, by)
				denied, by = check.Denied(aps, check.Request{Path: path, Principal: "https://auth/root", Claims: admin})
				assert.False(t, denied, "%s: %s with an admin token (denied by %q)", c.Name, path, by)
			}
		}
		// A path outside the catalog is not opened by a missing rule either.
		denied, _ := check.Denied(aps, check.Request{Path: "/admin"})
		assert.True(t, denied, "%s: /admin without a token", c.Name)
	}
}

// TestIstioPins: the Istio charts share one exact version, 1.27 or newer.
func TestIstioPins(t *testing.T) {
	exact := regexp.MustCompile(`^1\.(\d+)\.\d+$`)
	for _, c := range repo(t).Clusters {
		versions := map[string]string{}
		for _, a := range c.Apps {
			if a.Chart != nil && a.Chart.RepoURL == "https://istio-release.storage.googleapis.com/charts" {
				versions[a.Chart.Chart] = a.Chart.TargetRevision
			}
		}
		charts := make([]string, 0, len(versions))
		for k := range versions {
			charts = append(charts, k)
		}
		sort.Strings(charts)
		assert.Equal(t, []string{"base", "cni", "gateway", "istiod"}, charts, "%s: Istio charts", c.Name)
		first := versions["base"]
		for chart, v := range versions {
			assert.Equal(t, first, v, "%s: istio %s is not at the same version as base", c.Name, chart)
			m := exact.FindStringSubmatch(v)
			if assert.NotNil(t, m, "%s: istio %s %q is not an exact 1.x.y", c.Name, chart, v) {
				minor, _ := strconv.Atoi(m[1])
				assert.GreaterOrEqual(t, minor, 27, "%s: istio %s is older than 1.27", c.Name, chart)
			}
		}
	}
}
