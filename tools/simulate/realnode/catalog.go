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

// Catalog is the service catalog as the services' values files declare it
// (services/<name>/values.yaml: calls, calledBy; services/chart/values.yaml: ports and the
// identities of the ingress gateway and Prometheus). It is read here, not from the rendered
// NetworkPolicies, so that the packets are judged against the catalog, not against the policies
// they test.
type Catalog struct {
	Namespace string
	Services  []string            // sorted
	Calls     map[string][]string // service -> the services it calls
	CalledBy  map[string][]string // service -> its callers ("gateway" for the ingress gateway)
	HTTPPort  int
	Metrics   int
	Gateway   Identity // the ingress gateway's pods
	Prom      Identity // Prometheus' pods
}

// Identity is where a caller outside the namespace runs and the labels its pods carry.
type Identity struct {
	Namespace string
	Labels    map[string]string
}

// Gateway is the caller name the catalog uses for the ingress gateway; Unlabelled names a pod
// in Prometheus' namespace that lacks Prometheus' labels (the namespace alone must not be enough).
const (
	Gateway    = "gateway"
	Unlabelled = "unlabelled-in-monitoring"
)

type chartValues struct {
	Ports struct{ HTTP, Metrics int } `json:"ports"`
	Mesh  struct {
		IngressGateway struct {
			Namespace string            `json:"namespace"`
			PodLabels map[string]string `json:"podLabels"`
		} `json:"ingressGateway"`
	} `json:"mesh"`
	Monitoring struct {
		Namespace           string            `json:"namespace"`
		PrometheusPodLabels map[string]string `json:"prometheusPodLabels"`
	} `json:"monitoring"`
	Calls    []string `json:"calls"`
	CalledBy []string `json:"calledBy"`
}

// LoadCatalog reads repo/services/chart/values.yaml and every repo/services/<name>/values.yaml.
// Errors: a file that cannot be read or parsed.
func LoadCatalog(repo, namespace string) (*Catalog, error) {
	var chart chartValues
	if err := readYAML(filepath.Join(repo, "services", "chart", "values.yaml"), &chart); err != nil {
		return nil, err
	}
	c := &Catalog{Namespace: namespace, Calls: map[string][]string{}, CalledBy: map[string][]string{},
		HTTPPort: chart.Ports.HTTP, Metrics: chart.Ports.Metrics,
		Gateway: Identity{chart.Mesh.IngressGateway.Namespace, chart.Mesh.IngressGateway.PodLabels},
		Prom:    Identity{chart.Monitoring.Namespace, chart.Monitoring.PrometheusPodLabels}}
	files, err := filepath.Glob(filepath.Join(repo, "services", "*", "values.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		name := filepath.Base(filepath.Dir(f))
		if name == "chart" {
			continue
		}
		var v chartValues
		if err := readYAML(f, &v); err != nil {
			return nil, err
		}
		c.Services = append(c.Services, name)
		c.Calls[name], c.CalledBy[name] = v.Calls, v.CalledBy
	}
	sort.Strings(c.Services)
	if len(c.Services) == 0 {
		return nil, fmt.Errorf("no services/*/values.yaml under %s", repo)
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
//   - each ordered pair of services (n*(n-1)): the application port connects iff the caller
//     lists the callee in calls AND the callee lists the caller in calledBy; the metrics port never;
//   - the ingress gateway to every service: the application port iff calledBy has "gateway";
//   - Prometheus to every service: the metrics port always, the application port never;
//   - a pod in Prometheus' namespace without Prometheus' labels (Unlabelled): neither port;
//   - every service to an address outside the cluster (outsidePort): never; the gateway's pod
//     (no egress policy in its namespace): yes, a control that the address is reachable.
//
// Problems lists calls that only one side declares (the policies would open neither way).
func (c *Catalog) Expectations(outsidePort int) (exp []Expectation, problems []string) {
	for _, from := range c.Services {
		for _, to := range c.Services {
			if from == to {
				continue
			}
			calls, called := slices.Contains(c.Calls[from], to), slices.Contains(c.CalledBy[to], from)
			if calls != called {
				problems = append(problems, fmt.Sprintf("catalog: %s calls %v %s, but %s calledBy %v %s", from, calls, to, to, called, from))
			}
			exp = append(exp, Expectation{from, to, c.HTTPPort, calls && called}, Expectation{from, to, c.Metrics, false})
		}
		exp = append(exp, Expectation{from, Outside, outsidePort, false})
	}
	for _, to := range c.Services {
		exp = append(exp,
			Expectation{Gateway, to, c.HTTPPort, slices.Contains(c.CalledBy[to], Gateway)},
			Expectation{Gateway, to, c.Metrics, false},
			Expectation{"prometheus", to, c.Metrics, true},
			Expectation{"prometheus", to, c.HTTPPort, false},
			Expectation{Unlabelled, to, c.Metrics, false},
			Expectation{Unlabelled, to, c.HTTPPort, false})
	}
	// Control: the gateway's namespace has no egress policy, so its pod reaches the outside
	// address; the services' drops of it are then their policies' doing, not the network's.
	exp = append(exp, Expectation{Gateway, Outside, outsidePort, true})
	return exp, problems
}

// Judge compares what the probes saw (outcome per Expectation.Key: "ok" connected; anything else
// did not) with the expectations and returns one problem per connection that differs, naming it.
func Judge(exp []Expectation, seen map[string]string) []string {
	var problems []string
	for _, e := range exp {
		got, ok := seen[e.Key()]
		switch {
		case !ok:
			problems = append(problems, e.Key()+": not probed")
		case e.Connect && got != "ok":
			problems = append(problems, fmt.Sprintf("%s: %s, but the catalog declares this call", e.Key(), got))
		case !e.Connect && got == "ok":
			problems = append(problems, fmt.Sprintf("%s: connected, but the catalog has no such call", e.Key()))
		}
	}
	sort.Strings(problems)
	return problems
}

// Tally counts, for a report line, the pairs between services that connected and were dropped.
func Tally(exp []Expectation, seen map[string]string, httpPort int) (connected, dropped, timeouts int) {
	for _, e := range exp {
		if e.Port != httpPort || e.From == Gateway || e.From == "prometheus" || e.From == Unlabelled || e.To == Outside {
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

// labelsString renders labels as k=v,k=v (sorted), for messages.
func labelsString(l map[string]string) string {
	var out []string
	for k, v := range l {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
