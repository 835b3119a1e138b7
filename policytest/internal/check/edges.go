package check

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cloudlab/platform/policytest/internal/render"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Gateway is the caller name of the Istio ingress gateway in the service catalog.
const Gateway = "gateway"

// Edge is one allowed call: Caller (a service, or "gateway") calls Callee.
type Edge struct{ Caller, Callee string }

func (e Edge) String() string { return e.Caller + "->" + e.Callee }

// ServiceValues is what a service folder declares (services/<name>/values.yaml).
type ServiceValues struct {
	Name        string
	DataStores  []string `json:"dataStores"`
	Calls       []string `json:"calls"`
	CalledBy    []string `json:"calledBy"`
	PublicRoute string   `json:"publicRoute"`
}

// LoadServices reads every services/<name>/values.yaml.
func LoadServices(repoRoot string) ([]ServiceValues, error) {
	files, err := filepath.Glob(filepath.Join(repoRoot, "services", "*", "values.yaml"))
	if err != nil {
		return nil, err
	}
	var out []ServiceValues
	for _, f := range files {
		if filepath.Base(filepath.Dir(f)) == "chart" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var v ServiceValues
		if err := yaml.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		v.Name = filepath.Base(filepath.Dir(f))
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeclaredEdges is the call graph the service folders declare, and what is inconsistent in it:
// A.calls contains B exactly when B.calledBy contains A, and every name is a service.
func DeclaredEdges(services []ServiceValues) (edges []Edge, problems []string) {
	known := map[string]bool{}
	for _, s := range services {
		known[s.Name] = true
	}
	byCalls, byCalledBy := map[Edge]bool{}, map[Edge]bool{}
	for _, s := range services {
		for _, callee := range s.Calls {
			if !known[callee] {
				problems = append(problems, fmt.Sprintf("%s calls %q, which is not a service folder", s.Name, callee))
			}
			byCalls[Edge{s.Name, callee}] = true
		}
		for _, caller := range s.CalledBy {
			if caller != Gateway && !known[caller] {
				problems = append(problems, fmt.Sprintf("%s is called by %q, which is not a service folder", s.Name, caller))
			}
			byCalledBy[Edge{caller, s.Name}] = true
		}
	}
	for e := range byCalls {
		if !byCalledBy[e] {
			problems = append(problems, fmt.Sprintf("%s calls %s, but %s's calledBy does not list %s", e.Caller, e.Callee, e.Callee, e.Caller))
		}
	}
	for e := range byCalledBy {
		if e.Caller != Gateway && !byCalls[e] {
			problems = append(problems, fmt.Sprintf("%s lists %s in calledBy, but %s's calls does not list %s", e.Callee, e.Caller, e.Caller, e.Callee))
		}
		edges = append(edges, e)
	}
	sortEdges(edges)
	sort.Strings(problems)
	return edges, problems
}

// workload is a Deployment's pods as the network sees them.
type workload struct {
	name, namespace, serviceAccount string
	labels                          map[string]string
}

func workloadsIn(objs []*unstructured.Unstructured, namespace string) []workload {
	var out []workload
	for _, o := range objs {
		if o.GetKind() != "Deployment" || o.GetNamespace() != namespace {
			continue
		}
		labels, _, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels")
		sa, _, _ := unstructured.NestedString(o.Object, "spec", "template", "spec", "serviceAccountName")
		out = append(out, workload{name: labels["app.kubernetes.io/name"], namespace: namespace, serviceAccount: sa, labels: labels})
	}
	return out
}

func subset(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// peerMatches reports whether a NetworkPolicy peer (from/to entry) admits pods with podLabels in
// podNamespace, for a policy in policyNamespace. Namespaces carry only their name label here.
func peerMatches(peer map[string]any, policyNamespace, podNamespace string, podLabels map[string]string) bool {
	if _, ok := peer["ipBlock"]; ok {
		return false
	}
	nsSel, hasNS := peer["namespaceSelector"].(map[string]any)
	if hasNS {
		ml, _, _ := unstructured.NestedStringMap(nsSel, "matchLabels")
		if !subset(ml, map[string]string{"kubernetes.io/metadata.name": podNamespace}) {
			return false
		}
	} else if podNamespace != policyNamespace {
		return false
	}
	if podSel, ok := peer["podSelector"].(map[string]any); ok {
		ml, _, _ := unstructured.NestedStringMap(podSel, "matchLabels")
		return subset(ml, podLabels)
	}
	return true
}

func portAllowed(rule map[string]any, port int64, name string) bool {
	ports, ok := rule["ports"].([]any)
	if !ok || len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pm, _ := p.(map[string]any)
		switch v := pm["port"].(type) {
		case int64:
			if v == port {
				return true
			}
		case string:
			if v == name {
				return true
			}
		case nil:
			return true
		}
	}
	return false
}

// allows reports whether the NetworkPolicies of a namespace let traffic of direction
// ("ingress" or "egress") through for the pods `self`, to or from the peer pods.
func allows(policies []*unstructured.Unstructured, direction string, self workload, peerNS string, peerLabels map[string]string, port int64) bool {
	for _, np := range policies {
		if np.GetNamespace() != self.namespace {
			continue
		}
		sel, _, _ := unstructured.NestedStringMap(np.Object, "spec", "podSelector", "matchLabels")
		if !subset(sel, self.labels) {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(np.Object, "spec", direction)
		peersKey := map[string]string{"ingress": "from", "egress": "to"}[direction]
		for _, r := range rules {
			rule, _ := r.(map[string]any)
			if !portAllowed(rule, port, "http") {
				continue
			}
			peers, ok := rule[peersKey].([]any)
			if !ok || len(peers) == 0 {
				return true // no peers: everything
			}
			for _, p := range peers {
				if pm, _ := p.(map[string]any); peerMatches(pm, self.namespace, peerNS, peerLabels) {
					return true
				}
			}
		}
	}
	return false
}

// GatewayPods is where the ingress gateway runs (platform/istio-gateway values).
var GatewayPods = struct {
	Namespace, ServiceAccount string
	Labels                    map[string]string
}{"istio-ingress", "istio-ingressgateway", map[string]string{"istio": "ingressgateway", "app": "istio-ingressgateway"}}

// NetworkEdges is every call between the Deployments of a namespace (and from the ingress
// gateway) on the application port that the rendered NetworkPolicies allow: the callee's
// ingress admits the caller and the caller's egress admits the callee. The gateway's own
// namespace is not ours, so only the callee's side is checked for it.
func NetworkEdges(c *render.Cluster, namespace string, port int64) []Edge {
	objs := allObjects(c)
	var nps []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "NetworkPolicy" {
			nps = append(nps, o)
		}
	}
	ws := workloadsIn(objs, namespace)
	var out []Edge
	for _, callee := range ws {
		if allows(nps, "ingress", callee, GatewayPods.Namespace, GatewayPods.Labels, port) {
			out = append(out, Edge{Gateway, callee.name})
		}
		for _, caller := range ws {
			if caller.name == callee.name {
				continue
			}
			if allows(nps, "ingress", callee, namespace, caller.labels, port) && allows(nps, "egress", caller, namespace, callee.labels, port) {
				out = append(out, Edge{caller.name, callee.name})
			}
		}
	}
	sortEdges(out)
	return out
}

// MeshEdges is every call between the Deployments of a namespace (and from the ingress gateway)
// that the rendered Istio AuthorizationPolicies ALLOW on the application port, by principal.
// It assumes the namespace's deny-all, which the mesh checks require.
func MeshEdges(c *render.Cluster, namespace, trustDomain string, port int64) []Edge {
	objs := allObjects(c)
	ws := workloadsIn(objs, namespace)
	bySA := map[string]string{
		fmt.Sprintf("%s/ns/%s/sa/%s", trustDomain, GatewayPods.Namespace, GatewayPods.ServiceAccount): Gateway,
	}
	for _, w := range ws {
		bySA[fmt.Sprintf("%s/ns/%s/sa/%s", trustDomain, namespace, w.serviceAccount)] = w.name
	}
	seen := map[Edge]bool{}
	for _, ap := range objs {
		if ap.GetKind() != "AuthorizationPolicy" || ap.GetNamespace() != namespace {
			continue
		}
		if action, _, _ := unstructured.NestedString(ap.Object, "spec", "action"); action != "" && action != "ALLOW" {
			continue
		}
		sel, _, _ := unstructured.NestedStringMap(ap.Object, "spec", "selector", "matchLabels")
		rules, _, _ := unstructured.NestedSlice(ap.Object, "spec", "rules")
		for _, callee := range ws {
			if len(sel) == 0 || !subset(sel, callee.labels) {
				continue
			}
			for _, r := range rules {
				rule, _ := r.(map[string]any)
				if !operationAllowsPort(rule, port) {
					continue
				}
				froms, _, _ := unstructured.NestedSlice(rule, "from")
				for _, f := range froms {
					principals, _, _ := unstructured.NestedStringSlice(f.(map[string]any), "source", "principals")
					for _, p := range principals {
						if caller, ok := bySA[p]; ok {
							seen[Edge{caller, callee.name}] = true
						}
					}
				}
			}
		}
	}
	var out []Edge
	for e := range seen {
		out = append(out, e)
	}
	sortEdges(out)
	return out
}

// operationAllowsPort: a rule restricted to paths (the helm test's GET /readyz) is not a call
// edge; a rule for the port (or for any port) is.
func operationAllowsPort(rule map[string]any, port int64) bool {
	tos, _, _ := unstructured.NestedSlice(rule, "to")
	if len(tos) == 0 {
		return true
	}
	for _, t := range tos {
		op, _, _ := unstructured.NestedMap(t.(map[string]any), "operation")
		if _, hasPaths := op["paths"]; hasPaths {
			continue
		}
		ports, _, _ := unstructured.NestedStringSlice(op, "ports")
		if len(ports) == 0 {
			return true
		}
		for _, p := range ports {
			if p == fmt.Sprint(port) {
				return true
			}
		}
	}
	return false
}

func allObjects(c *render.Cluster) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, a := range c.AllApps() {
		out = append(out, a.Objects...)
	}
	return out
}

func sortEdges(e []Edge) {
	sort.Slice(e, func(i, j int) bool { return e[i].String() < e[j].String() })
}

// EdgeStrings renders edges for comparison and messages.
func EdgeStrings(e []Edge) []string {
	out := make([]string, len(e))
	for i, x := range e {
		out[i] = x.String()
	}
	return out
}

// Difference is what a has that b has not, as "A->B" strings.
func Difference(a, b []Edge) string {
	in := map[Edge]bool{}
	for _, e := range b {
		in[e] = true
	}
	var out []string
	for _, e := range a {
		if !in[e] {
			out = append(out, e.String())
		}
	}
	return strings.Join(out, ", ")
}
