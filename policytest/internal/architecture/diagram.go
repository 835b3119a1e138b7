// Package architecture draws docs/architecture.md's picture from the repository itself: the
// rendered clusters (their Applications, waves and namespaces, the gateway) and the service
// catalog (calls, public routes, stores), as a Mermaid flowchart that GitHub renders.
package architecture

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cloudlab/platform/policytest/internal/check"
	"github.com/cloudlab/platform/policytest/internal/render"
)

// Shape is what a cluster runs on (clusters/<env>/simulation.yaml): its nodes' zones.
type Shape struct {
	Nodes []struct {
		Zone string `json:"zone"`
	} `json:"nodes"`
}

// Input is what the picture is drawn from. Clusters are in the order to draw them; Shapes by
// cluster name.
type Input struct {
	Clusters []*render.Cluster
	Shapes   map[string]Shape
	Catalog  *check.Catalog
}

// storeApp is the prefix of a data-tier Application's name: data-<store>.
const storeApp = "data-"

// Mermaid returns the flowchart (without the ```mermaid fence): the clusters and their root
// Application, the four waves with every Application (its sync-wave and namespace; the clusters
// that have it, when not all do), and the request path: the gateway and the public routes, the
// services in their namespace with the catalog's calls, and the stores each service uses. An
// error names what the repository lacks (no cluster, no Gateway, a store no Application runs).
func Mermaid(in Input) (string, error) {
	if len(in.Clusters) == 0 {
		return "", fmt.Errorf("no cluster")
	}
	var b strings.Builder
	b.WriteString("flowchart TB\n")
	writeClusters(&b, in)
	if err := writeWaves(&b, in.Clusters); err != nil {
		return "", err
	}
	if err := writeRequestPath(&b, in.Clusters[0], in.Catalog); err != nil {
		return "", err
	}
	return b.String(), nil
}

// writeClusters draws git, each cluster with its nodes and zones, and the root Application.
func writeClusters(b *strings.Builder, in Input) {
	b.WriteString("  git[(\"git: main of this repository\")]\n")
	b.WriteString("  subgraph clusters[\"clusters: one Argo CD each, bootstrapped by kubectl apply -k clusters/(env)/bootstrap\"]\n")
	for _, c := range in.Clusters {
		zones := map[string]bool{}
		for _, n := range in.Shapes[c.Name].Nodes {
			zones[n.Zone] = true
		}
		fmt.Fprintf(b, "    cluster_%s[\"%s: %s in %s\"]\n", c.Name, c.Name, count(len(in.Shapes[c.Name].Nodes), "node"), count(len(zones), "zone"))
	}
	b.WriteString("  end\n")
	b.WriteString("  git --> clusters\n")
	fmt.Fprintf(b, "  clusters --> root[\"Application %s: clusters/(env)/apps (app-of-apps)\"]\n", render.RootName)
}

// writeWaves draws one box per wave (check.Waves, in order) holding its Applications, each
// with its sync-wave and destination namespace, the root syncing the first wave and each wave
// the next.
func writeWaves(b *strings.Builder, clusters []*render.Cluster) error {
	type app struct {
		name, namespace, wave string
		number                int
		clusters              []string
	}
	apps := map[string]*app{}
	var names []string
	for _, c := range clusters {
		for _, a := range c.Apps {
			x, ok := apps[a.Name()]
			if !ok {
				x = &app{name: a.Name(), namespace: a.Application.Spec.Destination.Namespace, wave: a.Application.Labels["cloudlab.io/wave"], number: a.Wave}
				apps[a.Name()], names = x, append(names, a.Name())
			}
			x.clusters = append(x.clusters, c.Name)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := apps[names[i]], apps[names[j]]
		return a.number < b.number || a.number == b.number && a.name < b.name
	})
	previous := "root"
	for i, w := range check.Waves {
		fmt.Fprintf(b, "  subgraph wave_%s[\"wave %s: sync-waves %d-%d\"]\n", w, w, i*10, i*10+9)
		n := 0
		for _, name := range names {
			if a := apps[name]; a.wave == w {
				only := ""
				if len(a.clusters) < len(clusters) {
					only = " (" + strings.Join(a.clusters, ", ") + " only)"
				}
				fmt.Fprintf(b, "    app_%s[\"%s %d → ns %s%s\"]\n", id(name), name, a.number, a.namespace, only)
				n++
			}
		}
		b.WriteString("  end\n")
		if n == 0 {
			return fmt.Errorf("wave %s has no Application", w)
		}
		fmt.Fprintf(b, "  %s --> wave_%s\n", previous, w)
		previous = "wave_" + w
	}
	return nil
}

// writeRequestPath draws a request's way in one cluster (they share it): the client, the
// gateway, the public routes to the services of the catalog in their namespace, the calls
// between them, and the stores each service uses (in the data tier's namespace).
func writeRequestPath(b *strings.Builder, c *render.Cluster, cat *check.Catalog) error {
	gateway, appNS, dataNS, jwt := "", "", "", ""
	injection := map[string]string{} // namespace -> its istio-injection label
	for _, a := range c.AllApps() {
		for _, o := range a.Objects {
			switch {
			case o.GetKind() == "Gateway" && strings.HasPrefix(o.GetAPIVersion(), "networking.istio.io/"):
				gateway = o.GetNamespace() + "/" + o.GetName()
			case o.GetKind() == "RequestAuthentication":
				jwt = o.GetNamespace() + "/" + o.GetName()
			case o.GetKind() == "Namespace":
				injection[o.GetName()] = o.GetLabels()["istio-injection"]
			}
		}
		switch {
		case a.Name() == "services":
			appNS = a.Application.Spec.Destination.Namespace
		case strings.HasPrefix(a.Name(), storeApp):
			dataNS = a.Application.Spec.Destination.Namespace
		}
	}
	if gateway == "" || appNS == "" || dataNS == "" {
		return fmt.Errorf("cluster %s: no Istio Gateway (%q), services Application (%q) or data-tier Application (%q)", c.Name, gateway, appNS, dataNS)
	}
	b.WriteString("  client([\"client\"]) -->|HTTPS| gateway\n")
	if jwt != "" {
		jwt = ", JWT: RequestAuthentication " + jwt
	}
	fmt.Fprintf(b, "  gateway[\"istio-gateway: Gateway %s%s\"]\n", gateway, jwt)
	fmt.Fprintf(b, "  subgraph ns_services[\"ns %s: istio-injection=%s, the catalog in one release of services/chart\"]\n", appNS, injection[appNS])
	for _, s := range cat.Services {
		fmt.Fprintf(b, "    svc_%s[\"%s\"]\n", id(s.Name), s.Name)
	}
	b.WriteString("  end\n")
	for _, s := range cat.Services {
		if s.PublicRoute != "" {
			fmt.Fprintf(b, "  gateway -->|\"%s\"| svc_%s\n", s.PublicRoute, id(s.Name))
		}
	}
	for _, s := range cat.Services {
		for _, callee := range s.Calls {
			fmt.Fprintf(b, "  svc_%s --> svc_%s\n", id(s.Name), id(callee))
		}
	}
	var stores []string
	for _, a := range c.Apps {
		if store, ok := strings.CutPrefix(a.Name(), storeApp); ok {
			stores = append(stores, store)
		}
	}
	sort.Strings(stores)
	fmt.Fprintf(b, "  subgraph ns_data[\"ns %s: istio-injection=%s, one chart per store\"]\n", dataNS, injection[dataNS])
	for _, s := range stores {
		fmt.Fprintf(b, "    store_%s[(\"%s\")]\n", id(s), s)
	}
	b.WriteString("  end\n")
	for _, s := range cat.Services {
		for _, store := range s.DataStores {
			if !slices.Contains(stores, store) {
				return fmt.Errorf("service %s uses store %s, which no Application %s%s runs", s.Name, store, storeApp, store)
			}
			fmt.Fprintf(b, "  svc_%s -.-> store_%s\n", id(s.Name), id(store))
		}
	}
	return nil
}

// count is "1 node", "3 nodes".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// id is a Mermaid node id for a name (letters, digits and _).
func id(name string) string { return strings.ReplaceAll(name, "-", "_") }
