package realnode

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Catalog is the service catalog as its files declare it (docs/decisions/0040): each
// services/<name>/values.yaml holds the entry services.<name> (calls, publicRoute, ports) and
// services/chart/values.yaml the defaults (serviceDefaults) and the identities of the ingress
// gateway and Prometheus. It is read here, not from the rendered NetworkPolicies, so that the
// packets are judged against the catalog, not against the policies they test.
type Catalog struct {
	Namespace string
	Services  []string            // sorted
	Calls     map[string][]string // service -> the services it calls
	Public    map[string]bool     // service -> it has a public route (the ingress gateway calls it)
	Ports     map[string]Ports    // service -> its ports
	Gateway   Identity            // the ingress gateway's pods
	Prom      Identity            // Prometheus' pods
}

// Ports are a service's application and metrics ports.
type Ports struct {
	HTTP    int `json:"http"`
	Metrics int `json:"metrics"`
}

// Identity is where a caller outside the namespace runs and the labels its pods carry.
type Identity struct {
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"podLabels"`
}

// Gateway is the caller name used for the ingress gateway; Unlabelled names a pod in
// Prometheus' namespace that lacks Prometheus' labels (the namespace alone must not be enough);
// NodeCaller is the node itself, the caller of the controls (Expectations).
const (
	Gateway    = "gateway"
	Unlabelled = "unlabelled-in-monitoring"
	NodeCaller = "node"
)

type entry struct {
	Calls       []string `json:"calls"`
	Ports       *Ports   `json:"ports"`
	PublicRoute *struct {
		Prefix string `json:"prefix"`
	} `json:"publicRoute"`
}

type catalogValues struct {
	Services        map[string]entry `json:"services"`
	ServiceDefaults entry            `json:"serviceDefaults"`
	Mesh            struct {
		IngressGateway Identity `json:"ingressGateway"`
	} `json:"mesh"`
	Prometheus Identity `json:"prometheus"`
}

// LoadCatalog reads repo/services/chart/values.yaml and every repo/services/<name>/values.yaml.
// Errors: a file that cannot be read or parsed; a folder whose file holds another entry; a call
// to a service that is not in the catalog.
func LoadCatalog(repo, namespace string) (*Catalog, error) {
	var chart catalogValues
	if err := readYAML(filepath.Join(repo, "services", "chart", "values.yaml"), &chart); err != nil {
		return nil, err
	}
	def := chart.ServiceDefaults
	if def.Ports == nil {
		return nil, fmt.Errorf("services/chart/values.yaml: serviceDefaults.ports missing")
	}
	c := &Catalog{Namespace: namespace, Calls: map[string][]string{}, Public: map[string]bool{}, Ports: map[string]Ports{},
		Gateway: chart.Mesh.IngressGateway, Prom: chart.Prometheus}
	files, err := filepath.Glob(filepath.Join(repo, "services", "*", "values.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		name := filepath.Base(filepath.Dir(f))
		if name == "chart" {
			continue
		}
		var v catalogValues
		if err := readYAML(f, &v); err != nil {
			return nil, err
		}
		e, ok := v.Services[name]
		if !ok || len(v.Services) != 1 {
			return nil, fmt.Errorf("%s: want exactly the entry services.%s", f, name)
		}
		c.Services = append(c.Services, name)
		c.Calls[name] = e.Calls
		c.Public[name] = e.PublicRoute != nil && e.PublicRoute.Prefix != ""
		p := *def.Ports
		if e.Ports != nil {
			if e.Ports.HTTP != 0 {
				p.HTTP = e.Ports.HTTP
			}
			if e.Ports.Metrics != 0 {
				p.Metrics = e.Ports.Metrics
			}
		}
		c.Ports[name] = p
	}
	sort.Strings(c.Services)
	if len(c.Services) == 0 {
		return nil, fmt.Errorf("no services/*/values.yaml under %s", repo)
	}
	for from, calls := range c.Calls {
		for _, to := range calls {
			if !slices.Contains(c.Services, to) {
				return nil, fmt.Errorf("services/%s/values.yaml: calls %q, which is not in the catalog", from, to)
			}
		}
	}
	return c, nil
}

func readYAML(path string, into any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Outside is the destination name of the address outside the cluster (a listener on the node).
const Outside = "outside"

// Expectation is one connection the packet check tries: from a caller's identity (a service,
// Gateway or "prometheus") to a service's port (or to Outside), and whether the catalog allows it.
type Expectation struct {
	From, To string
	Port     int
	Connect  bool
}

// Key names the connection in reports: "order -> cart:8080".
func (e Expectation) Key() string {
	if e.To == Outside {
		return fmt.Sprintf("%s -> outside the cluster", e.From)
	}
	return fmt.Sprintf("%s -> %s:%d", e.From, e.To, e.Port)
}

// Expectations lists every connection the packet check tries, from the catalog alone:
//   - each ordered pair of services (n*(n-1)): the callee's application port connects iff the
//     caller lists the callee in calls; the metrics port never;
//   - the ingress gateway to every service: the application port iff it has a public route;
//   - Prometheus to every service: the metrics port always, the application port never;
//   - a pod in Prometheus' namespace without Prometheus' labels (Unlabelled): neither port;
//   - every service to an address outside the cluster (outsidePort): never; the gateway's pod
//     (no egress policy in its namespace): yes, a control that the address is reachable;
//   - a control for every service port that no caller above may reach (today notification's
//     application port: nothing calls it and it has no public route): the node itself
//     (NodeCaller) connects to it, which NetworkPolicies never block (Kubernetes'
//     NetworkPolicy documentation: pods cannot "block access from their resident node"). Else
//     every drop there would pass with the Service or its port broken, as a broken one times
//     out too; with it, the drops are the policies' doing.
func (c *Catalog) Expectations(outsidePort int) []Expectation {
	var exp []Expectation
	for _, from := range c.Services {
		for _, to := range c.Services {
			if from == to {
				continue
			}
			p := c.Ports[to]
			exp = append(exp, Expectation{from, to, p.HTTP, slices.Contains(c.Calls[from], to)}, Expectation{from, to, p.Metrics, false})
		}
		exp = append(exp, Expectation{from, Outside, outsidePort, false})
	}
	for _, to := range c.Services {
		p := c.Ports[to]
		exp = append(exp,
			Expectation{Gateway, to, p.HTTP, c.Public[to]},
			Expectation{Gateway, to, p.Metrics, false},
			Expectation{"prometheus", to, p.Metrics, true},
			Expectation{"prometheus", to, p.HTTP, false},
			Expectation{Unlabelled, to, p.Metrics, false},
			Expectation{Unlabelled, to, p.HTTP, false})
	}
	// Control: the gateway's namespace has no egress policy, so its pod reaches the outside
	// address; the services' drops of it are then their policies' doing, not the network's.
	exp = append(exp, Expectation{Gateway, Outside, outsidePort, true})
	reachable := map[Expectation]bool{}
	for _, e := range exp {
		if e.Connect {
			reachable[Expectation{To: e.To, Port: e.Port}] = true
		}
	}
	for _, to := range c.Services {
		for _, port := range []int{c.Ports[to].HTTP, c.Ports[to].Metrics} {
			if !reachable[Expectation{To: to, Port: port}] {
				exp = append(exp, Expectation{NodeCaller, to, port, true})
			}
		}
	}
	return exp
}

// IsMetrics says whether an expectation is to a service's metrics port.
func (c *Catalog) IsMetrics(e Expectation) bool {
	return e.To != Outside && e.Port == c.Ports[e.To].Metrics
}

// Judge compares what the probes saw (outcome per Expectation.Key, as the probe reports it:
// "ok", "timeout", "refused", "status <code>", "dns: ...", "unreachable", "error: ...") with
// the expectations and returns one problem per connection that differs, naming it and what
// happened. An allowed connection must be "ok". A denied one must be "timeout": a
// NetworkPolicy drops packets silently, so anything else means that the packet was not
// dropped by a policy (refused: it crossed the policy and found the port closed; a status: an
// answer came back) or never left (dns: the name did not resolve).
func Judge(exp []Expectation, seen map[string]string) []string {
	var problems []string
	for _, e := range exp {
		got, ok := seen[e.Key()]
		switch {
		case !ok:
			problems = append(problems, e.Key()+": not probed")
		case e.Connect && got != "ok" && e.From == NodeCaller:
			problems = append(problems, fmt.Sprintf("%s: %s, but this control must connect: no caller may reach %s:%d, so without it "+
				"every drop there would pass with its Service or port broken", e.Key(), got, e.To, e.Port))
		case e.Connect && got != "ok":
			problems = append(problems, fmt.Sprintf("%s: %s, but the catalog declares this call", e.Key(), got))
		case !e.Connect && got == "ok":
			problems = append(problems, fmt.Sprintf("%s: connected, but the catalog has no such call", e.Key()))
		case !e.Connect && got != "timeout":
			problems = append(problems, fmt.Sprintf("%s: %s, but a connection the catalog denies must time out (a policy drops silently): %s",
				e.Key(), got, notSilent(got)))
		}
	}
	sort.Strings(problems)
	return problems
}

// notSilent says what an outcome other than a timeout means for a denied connection.
func notSilent(outcome string) string {
	switch {
	case outcome == "refused":
		return "the connection crossed the policies and found the port closed"
	case strings.HasPrefix(outcome, "status "):
		return "an answer came back"
	case strings.HasPrefix(outcome, "dns: "):
		return "the name did not resolve, so nothing was sent"
	case outcome == "unreachable":
		return "the network, not a policy, turned it away"
	}
	return "it was not dropped by a policy"
}

// Controls names the ports that only a control reaches ("notification:8080"), for the report.
func Controls(exp []Expectation) []string {
	var out []string
	for _, e := range exp {
		if e.From == NodeCaller {
			out = append(out, fmt.Sprintf("%s:%d", e.To, e.Port))
		}
	}
	return out
}

// Tally counts, for a report line, the pairs between services (application port) that
// connected and were dropped, and how many of the drops were silent (timeouts).
func (c *Catalog) Tally(exp []Expectation, seen map[string]string) (connected, dropped, timeouts int) {
	for _, e := range exp {
		if _, fromService := c.Calls[e.From]; !fromService || e.To == Outside || c.IsMetrics(e) {
			continue
		}
		if seen[e.Key()] == "ok" {
			connected++
		} else {
			dropped++
			if seen[e.Key()] == "timeout" {
				timeouts++
			}
		}
	}
	return
}
