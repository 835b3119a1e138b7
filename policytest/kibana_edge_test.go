package policytest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cloudlab/platform/policytest/internal/check"
	"github.com/cloudlab/platform/policytest/internal/netpol"
)

// Kibana behind the ingress gateway (issue 10: "Kibana behind the gateway with authentication"):
// the edge VirtualService routes /kibana/ to Kibana's Service, the gateway's authorization wants
// a token with the ops role there (Kibana's own login comes after), and Kibana's NetworkPolicies
// admit the gateway's pods on Kibana's port.

const (
	kibanaPrefix = "/kibana/"
	kibanaHost   = "kibana.observability.svc.cluster.local"
	kibanaPort   = 5601
)

var kibanaRoute = check.PublicRoute{Prefix: kibanaPrefix, Host: kibanaHost, Port: kibanaPort}

// kibanaEdgeProblems checks one cluster's rendered objects, one sentence a problem; deployed is
// false where the cluster runs no Kibana (dev, where logging is opt-in), and then nothing is
// checked: TestPublicRoutes holds that such a cluster has no route to it.
func kibanaEdgeProblems(objs []*unstructured.Unstructured) (problems []string, deployed bool) {
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	var policies []*unstructured.Unstructured
	var gateway, kibana *unstructured.Unstructured
	for _, o := range objs {
		switch {
		case o.GetKind() == "AuthorizationPolicy" && o.GetNamespace() == "istio-ingress":
			policies = append(policies, o)
		case o.GetKind() == "Deployment" && o.GetNamespace() == "istio-ingress":
			gateway = o
		case o.GetKind() == "Deployment" && o.GetNamespace() == observabilityNS && o.GetName() == "kibana":
			kibana = o
		}
	}
	if kibana == nil {
		return nil, false
	}
	routes, _ := check.PublicRoutes(objs, "istio-ingress")
	if got, ok := routes[kibanaPrefix]; !ok || got != kibanaRoute {
		fail("the edge VirtualService routes %s to %+v, want %+v", kibanaPrefix, got, kibanaRoute)
	}
	if !kibanaRouteDropsToken(objs) {
		fail("the edge VirtualService's route %q passes the Authorization header on: Kibana would take the gateway's JWT for an Elasticsearch token (401, no login page)", "kibana")
	}
	for _, path := range []string{"/kibana", "/kibana/app/discover"} {
		for _, c := range []struct {
			who     string
			req     check.Request
			allowed bool
		}{
			{"without a token", check.Request{Path: path}, false},
			{"with a customer's token", check.Request{Path: path, Principal: "https://auth/alice", Claims: map[string][]string{"roles": {"customer", "admin"}}}, false},
			{"with an operator's token", check.Request{Path: path, Principal: "https://auth/bob", Claims: map[string][]string{"roles": {"ops"}}}, true},
		} {
			if denied, by := check.Denied(policies, c.req); denied == c.allowed {
				fail("%s %s: denied=%v (by %q), want denied=%v", path, c.who, denied, by, !c.allowed)
			}
		}
	}
	if gateway == nil {
		return append(problems, "no gateway Deployment in istio-ingress"), true
	}
	np, err := netpol.New(objs)
	if err != nil {
		return append(problems, err.Error()), true
	}
	from, _ := netpol.TemplatePod(gateway)
	to, _ := netpol.TemplatePod(kibana)
	if !np.Allowed(from, to, kibanaPort) {
		fail("NetworkPolicies keep the gateway's pods from Kibana's port %d", kibanaPort)
	}
	return problems, true
}

func TestKibanaBehindTheGateway(t *testing.T) {
	deployedSomewhere := false
	for _, c := range repo(t).Clusters {
		problems, deployed := kibanaEdgeProblems(check.AllObjects(c))
		assert.Empty(t, problems, c.Name)
		deployedSomewhere = deployedSomewhere || deployed
		if c.Name != "dev" {
			assert.True(t, deployed, "%s runs Kibana", c.Name)
		}
	}
	require.True(t, deployedSomewhere)
}

// TestKibanaBehindTheGatewayCatchesFaults breaks prod's objects one way at a time.
func TestKibanaBehindTheGatewayCatchesFaults(t *testing.T) {
	prod := check.AllObjects(clusterNamed(t, "prod"))
	without := func(kind, namespace, name string) []*unstructured.Unstructured {
		var out []*unstructured.Unstructured
		for _, o := range prod {
			if o.GetKind() != kind || o.GetNamespace() != namespace || o.GetName() != name {
				out = append(out, o)
			}
		}
		require.Len(t, out, len(prod)-1, "%s %s/%s is rendered", kind, namespace, name)
		return out
	}
	for _, c := range []struct {
		objs []*unstructured.Unstructured
		want string // the start of the problem it must report
	}{
		{without("AuthorizationPolicy", "istio-ingress", "edge-kibana-ops"), `/kibana with a customer's token: denied=false`},
		{without("VirtualService", "istio-ingress", "public-api"), "the edge VirtualService routes /kibana/ to"},
		{withoutKibanaHeaderRemoval(t, prod), "the edge VirtualService's route \"kibana\" passes the Authorization header on"},
		// Kibana without its policy: the namespace's default deny keeps the gateway out
		{without("NetworkPolicy", observabilityNS, "kibana"), "NetworkPolicies keep the gateway's pods from Kibana's port 5601"},
	} {
		problems, deployed := kibanaEdgeProblems(c.objs)
		require.True(t, deployed)
		found := false
		for _, p := range problems {
			found = found || strings.HasPrefix(p, c.want)
		}
		assert.True(t, found, "want a problem starting %q, got %q", c.want, problems)
	}
}

// kibanaRouteDropsToken: the edge VirtualService's route `kibana` removes the Authorization
// header from the request (the gateway's RequestAuthentication forwards the token it validated).
func kibanaRouteDropsToken(objs []*unstructured.Unstructured) bool {
	for _, o := range objs {
		if o.GetKind() != "VirtualService" || o.GetNamespace() != "istio-ingress" {
			continue
		}
		routes, _, _ := unstructured.NestedSlice(o.Object, "spec", "http")
		for _, r := range routes {
			rm, _ := r.(map[string]any)
			if rm["name"] != "kibana" {
				continue
			}
			removed, _, _ := unstructured.NestedStringSlice(rm, "headers", "request", "remove")
			return slices.ContainsFunc(removed, func(h string) bool { return strings.EqualFold(h, "authorization") })
		}
	}
	return false
}

// withoutKibanaHeaderRemoval is objs with the edge VirtualService's route `kibana` keeping the
// Authorization header (a deep copy: the cluster's objects are shared by the tests).
func withoutKibanaHeaderRemoval(t *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o
		if o.GetKind() != "VirtualService" || o.GetName() != "public-api" || o.GetNamespace() != "istio-ingress" {
			continue
		}
		c := o.DeepCopy()
		routes, _, _ := unstructured.NestedSlice(c.Object, "spec", "http")
		for _, r := range routes {
			if rm, _ := r.(map[string]any); rm["name"] == "kibana" {
				delete(rm, "headers")
			}
		}
		require.NoError(t, unstructured.SetNestedSlice(c.Object, routes, "spec", "http"))
		out[i] = c
	}
	return out
}
