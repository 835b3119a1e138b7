package check

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cloudlab/platform/policytest/internal/render"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// This file reads rendered objects back into calls: which workload may open a connection to
// which, on the callee's application port, according to each kind of policy on its own
// (NetworkPolicy, Istio AuthorizationPolicy, Istio Sidecar). The tests compare each with the
// catalog (catalog.go).

// Call is one allowed call: Caller (a service, or Gateway) calls Callee.
type Call struct{ Caller, Callee string }

func (e Call) String() string { return e.Caller + "->" + e.Callee }

// workload is a Deployment's pods as the network sees them.
type workload struct {
	name, namespace, serviceAccount string
	labels                          map[string]string
	httpPort                        int64 // the container port named http (the application port)
}

func workloadsIn(objs []*unstructured.Unstructured, namespace string) []workload {
	var out []workload
	for _, o := range objs {
		if o.GetKind() != "Deployment" || o.GetNamespace() != namespace {
			continue
		}
		labels, _, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels")
		sa, _, _ := unstructured.NestedString(o.Object, "spec", "template", "spec", "serviceAccountName")
		w := workload{name: labels["app.kubernetes.io/name"], namespace: namespace, serviceAccount: sa, labels: labels}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			ports, _, _ := unstructured.NestedSlice(c.(map[string]any), "ports")
			for _, p := range ports {
				if pm := p.(map[string]any); pm["name"] == "http" {
					w.httpPort, _ = pm["containerPort"].(int64)
				}
			}
		}
		out = append(out, w)
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
	if nsSel, ok := peer["namespaceSelector"].(map[string]any); ok {
		if !selectorMatches(nsSel, map[string]string{"kubernetes.io/metadata.name": podNamespace}) {
			return false
		}
	} else if podNamespace != policyNamespace {
		return false
	}
	if podSel, ok := peer["podSelector"].(map[string]any); ok {
		return selectorMatches(podSel, podLabels)
	}
	return true
}

// selectorMatches applies a label selector (matchLabels and matchExpressions, as rendered) with
// Kubernetes' own selector code; a selector that does not parse matches nothing.
func selectorMatches(selector map[string]any, labels map[string]string) bool {
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(selector, &ls); err != nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	return err == nil && sel.Matches(k8slabels.Set(labels))
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
		sel, _, _ := unstructured.NestedMap(np.Object, "spec", "podSelector")
		if !selectorMatches(sel, self.labels) {
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

// StoreClients lists, for each NetworkPolicy in storeNamespace (named after its store), the
// Deployments of appNamespace that its ingress rules admit on any port, sorted by name.
func StoreClients(objs []*unstructured.Unstructured, storeNamespace, appNamespace string) map[string][]string {
	out := map[string][]string{}
	ws := workloadsIn(objs, appNamespace)
	for _, np := range objs {
		if np.GetKind() != "NetworkPolicy" || np.GetNamespace() != storeNamespace {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(np.Object, "spec", "ingress")
		admitted := map[string]bool{}
		for _, r := range rules {
			peers, _, _ := unstructured.NestedSlice(r.(map[string]any), "from")
			for _, w := range ws {
				if len(peers) == 0 {
					admitted[w.name] = true // no peers: every source
				}
				for _, p := range peers {
					if pm, _ := p.(map[string]any); peerMatches(pm, storeNamespace, appNamespace, w.labels) {
						admitted[w.name] = true
					}
				}
			}
		}
		for name := range admitted {
			out[np.GetName()] = append(out[np.GetName()], name)
		}
		sort.Strings(out[np.GetName()])
	}
	return out
}

// GatewayPods is where the ingress gateway runs (platform/istio-gateway values).
var GatewayPods = struct {
	Namespace, ServiceAccount string
	Labels                    map[string]string
}{"istio-ingress", "istio-ingressgateway", map[string]string{"istio": "ingressgateway", "app": "istio-ingressgateway"}}

// NetworkPolicyCalls is every call between the Deployments of a namespace (and from the ingress
// gateway) to the callee's application port that the NetworkPolicies among objs allow: the
// callee's ingress admits the caller and the caller's egress admits the callee. The gateway's
// own namespace is not ours, so only the callee's side is checked for it.
func NetworkPolicyCalls(objs []*unstructured.Unstructured, namespace string) []Call {
	var nps []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "NetworkPolicy" {
			nps = append(nps, o)
		}
	}
	ws := workloadsIn(objs, namespace)
	var out []Call
	for _, callee := range ws {
		if allows(nps, "ingress", callee, GatewayPods.Namespace, GatewayPods.Labels, callee.httpPort) {
			out = append(out, Call{Gateway, callee.name})
		}
		for _, caller := range ws {
			if caller.name == callee.name {
				continue
			}
			if allows(nps, "ingress", callee, namespace, caller.labels, callee.httpPort) && allows(nps, "egress", caller, namespace, callee.labels, callee.httpPort) {
				out = append(out, Call{caller.name, callee.name})
			}
		}
	}
	sortCalls(out)
	return out
}

// AuthorizationPolicyCalls is every call between the Deployments of a namespace (and from the
// ingress gateway) that the Istio AuthorizationPolicies among objs ALLOW on the callee's
// application port, by principal. It assumes the namespace's deny-all, which the mesh checks
// require.
func AuthorizationPolicyCalls(objs []*unstructured.Unstructured, namespace, trustDomain string) []Call {
	ws := workloadsIn(objs, namespace)
	bySA := map[string]string{
		fmt.Sprintf("%s/ns/%s/sa/%s", trustDomain, GatewayPods.Namespace, GatewayPods.ServiceAccount): Gateway,
	}
	for _, w := range ws {
		bySA[fmt.Sprintf("%s/ns/%s/sa/%s", trustDomain, namespace, w.serviceAccount)] = w.name
	}
	seen := map[Call]bool{}
	for _, ap := range objs {
		if ap.GetKind() != "AuthorizationPolicy" || ap.GetNamespace() != namespace {
			continue
		}
		if action, _, _ := unstructured.NestedString(ap.Object, "spec", "action"); action != "" && action != "ALLOW" {
			continue
		}
		sel, _, _ := unstructured.NestedStringMap(ap.Object, "spec", "selector", "matchLabels")
		rules, _, _ := unstructured.NestedSlice(ap.Object, "spec", "rules")
		for _, callee := range istioSelected(ws, sel) {
			for _, r := range rules {
				rule, _ := r.(map[string]any)
				if !operationAllowsPort(rule, callee.httpPort) {
					continue
				}
				froms, _, _ := unstructured.NestedSlice(rule, "from")
				for _, f := range froms {
					principals, _, _ := unstructured.NestedStringSlice(f.(map[string]any), "source", "principals")
					for _, p := range principals {
						if caller, ok := bySA[p]; ok {
							seen[Call{caller, callee.name}] = true
						}
					}
				}
			}
		}
	}
	return sortedCalls(seen)
}

// istioSelected lists the workloads an Istio selector (an AuthorizationPolicy's matchLabels, a
// Sidecar's workloadSelector labels) applies to. An empty one applies to the whole namespace,
// which says nothing about one service's calls: none here.
func istioSelected(ws []workload, sel map[string]string) []workload {
	var out []workload
	for _, w := range ws {
		if len(sel) > 0 && subset(sel, w.labels) {
			out = append(out, w)
		}
	}
	return out
}

// operationAllowsPort: a rule restricted to paths (the helm test's GET /readyz) is not a call;
// a rule for the port (or for any port) is.
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

// SidecarCalls is every call between the Deployments of a namespace that the Istio Sidecar
// resources among objs let the caller's proxy make: the callee's Service host is among the
// egress hosts of the caller's Sidecar. Hosts are "<namespace>/<fqdn>" with "." for the
// Sidecar's own namespace and "*" for any; a host part "*" means every Service there.
func SidecarCalls(objs []*unstructured.Unstructured, namespace string) []Call {
	ws := workloadsIn(objs, namespace)
	seen := map[Call]bool{}
	for _, sc := range objs {
		if sc.GetKind() != "Sidecar" || sc.GetNamespace() != namespace {
			continue
		}
		sel, _, _ := unstructured.NestedStringMap(sc.Object, "spec", "workloadSelector", "labels")
		egress, _, _ := unstructured.NestedSlice(sc.Object, "spec", "egress")
		for _, caller := range istioSelected(ws, sel) {
			for _, e := range egress {
				hosts, _, _ := unstructured.NestedStringSlice(e.(map[string]any), "hosts")
				for _, callee := range servedBy(objs, namespace, hosts, ws) {
					if callee != caller.name {
						seen[Call{caller.name, callee}] = true
					}
				}
			}
		}
	}
	return sortedCalls(seen)
}

// servedBy names the workloads of namespace behind the Services that Sidecar egress hosts list.
func servedBy(objs []*unstructured.Unstructured, namespace string, hosts []string, ws []workload) []string {
	var out []string
	for _, svc := range objs {
		if svc.GetKind() != "Service" || svc.GetNamespace() != namespace {
			continue
		}
		fqdn := fmt.Sprintf("%s.%s.svc.cluster.local", svc.GetName(), namespace)
		listed := false
		for _, h := range hosts {
			ns, host, ok := strings.Cut(h, "/")
			listed = listed || ok && (ns == "." || ns == "*" || ns == namespace) && (host == "*" || host == fqdn)
		}
		if !listed {
			continue
		}
		sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
		for _, w := range ws {
			if len(sel) > 0 && subset(sel, w.labels) {
				out = append(out, w.name)
			}
		}
	}
	return out
}

// AllObjects is every object a cluster's Applications render.
func AllObjects(c *render.Cluster) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, a := range c.AllApps() {
		out = append(out, a.Objects...)
	}
	return out
}

func sortCalls(e []Call) {
	sort.Slice(e, func(i, j int) bool { return e[i].String() < e[j].String() })
}

func sortedCalls(set map[Call]bool) []Call {
	out := make([]Call, 0, len(set))
	for e := range set {
		out = append(out, e)
	}
	sortCalls(out)
	return out
}

// CallStrings renders calls as "A->B" for comparison and messages.
func CallStrings(e []Call) []string {
	out := make([]string, len(e))
	for i, x := range e {
		out[i] = x.String()
	}
	return out
}

// Difference is what a has that b has not, as "A->B" strings joined by ", ".
func Difference(a, b []Call) string {
	in := map[Call]bool{}
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
