package check

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// PublicRoute is one route the ingress gateway serves: requests whose path starts with Prefix
// go to Host (a Service's cluster-local name) on Port.
type PublicRoute struct {
	Prefix, Host string
	Port         int64
}

// PublicRoutes reads the routes the ingress gateway serves from the VirtualServices among objs:
// those in gatewayNamespace bound to a gateway, and the VirtualServices they delegate to, with
// Istio's delegation rule (a delegated route's prefix must lie inside the delegating route's, or
// istiod drops it). It returns the routes by prefix and, as problems, what Istio would not serve
// as written: a missing delegate, a delegated route outside its parent, a route with more than
// one prefix match or destination.
func PublicRoutes(objs []*unstructured.Unstructured, gatewayNamespace string) (map[string]PublicRoute, []string) {
	byName := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		if o.GetKind() == "VirtualService" {
			byName[o.GetNamespace()+"/"+o.GetName()] = o
		}
	}
	routes := map[string]PublicRoute{}
	var problems []string
	for _, vs := range objs {
		gateways, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "gateways")
		if vs.GetKind() != "VirtualService" || vs.GetNamespace() != gatewayNamespace || len(gateways) == 0 {
			continue
		}
		for _, r := range httpRoutes(vs) {
			where := fmt.Sprintf("VirtualService %s/%s route %q", vs.GetNamespace(), vs.GetName(), r["name"])
			prefix, ok := onePrefix(r)
			if !ok {
				problems = append(problems, where+": want exactly one uri prefix match")
				continue
			}
			ns, _, _ := unstructured.NestedString(r, "delegate", "namespace")
			name, delegated, _ := unstructured.NestedString(r, "delegate", "name")
			if !delegated {
				problems = append(problems, addRoute(routes, where, prefix, r)...)
				continue
			}
			child, found := byName[ns+"/"+name]
			if !found {
				problems = append(problems, fmt.Sprintf("%s delegates to VirtualService %s/%s, which no Application renders", where, ns, name))
				continue
			}
			for _, cr := range httpRoutes(child) {
				cwhere := fmt.Sprintf("VirtualService %s/%s route %q", ns, name, cr["name"])
				cprefix, ok := onePrefix(cr)
				switch {
				case !ok:
					problems = append(problems, cwhere+": want exactly one uri prefix match")
				case !strings.HasPrefix(cprefix, prefix):
					problems = append(problems, fmt.Sprintf("%s: prefix %s is outside %s, which delegates only %s (istiod drops it)", cwhere, cprefix, where, prefix))
				default:
					problems = append(problems, addRoute(routes, cwhere, cprefix, cr)...)
				}
			}
		}
	}
	return routes, problems
}

func httpRoutes(vs *unstructured.Unstructured) []map[string]any {
	list, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	out := make([]map[string]any, 0, len(list))
	for _, r := range list {
		if m, ok := r.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func onePrefix(route map[string]any) (string, bool) {
	matches, _, _ := unstructured.NestedSlice(route, "match")
	if len(matches) != 1 {
		return "", false
	}
	prefix, ok, _ := unstructured.NestedString(matches[0].(map[string]any), "uri", "prefix")
	return prefix, ok
}

func addRoute(routes map[string]PublicRoute, where, prefix string, r map[string]any) []string {
	dests, _, _ := unstructured.NestedSlice(r, "route")
	if len(dests) != 1 {
		return []string{where + ": want exactly one destination"}
	}
	d, _ := dests[0].(map[string]any)
	host, _, _ := unstructured.NestedString(d, "destination", "host")
	port, _, _ := unstructured.NestedInt64(d, "destination", "port", "number")
	if _, dup := routes[prefix]; dup {
		return []string{fmt.Sprintf("%s: prefix %s is routed twice", where, prefix)}
	}
	routes[prefix] = PublicRoute{Prefix: prefix, Host: host, Port: port}
	return nil
}
