package policytest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/check"
	"github.com/cloudlab/platform/policytest/internal/netpol"
	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// dataTierPaths is every connection one data-tier workload opens to another, by the label
// app.kubernetes.io/name of both ends, with the ports it uses — the members of a store among
// themselves, and the data tier's own clients (Schema Registry, Kafka UI, exporters, backup and
// bootstrap Jobs). Each port is what the store's manual says its peers use:
//   - PostgreSQL 5432: streaming replication, pg_basebackup and pg_rewind use the server port;
//   - Redis 6379 (a replica replicates from its master's data port) and 16379 (the cluster bus,
//     data port + 10000);
//   - ClickHouse 9000 (Distributed queries, native protocol) and 9009 (interserver_http_port:
//     replicas fetch parts); servers are Keeper's clients on 9181; Keeper members speak Raft on 9234;
//   - Elasticsearch 9300 (transport: every node-to-node request; HTTP 9200 is for clients only);
//   - Kafka 9092 (inter-broker replication) and 9093 (the KRaft controller quorum);
//   - Schema Registry 8081: a follower forwards every write to the leader's listener.
//
// The test compares this table with what the rendered NetworkPolicies allow between every
// ordered pair of data-tier workloads, in every environment: a missing port is a broken store
// (issue: followers could not forward to the leader), an extra one a hole.
var dataTierPaths = map[string]map[string][]int32{
	"postgresql":           {"postgresql": {5432}},
	"postgresql-backup":    {"postgresql": {5432}},
	"postgresql-restore":   {"postgresql": {5432}},
	"redis":                {"redis": {6379, 16379}},
	"redis-bootstrap":      {"redis": {6379}},
	"redis-backup":         {"redis": {6379}},
	"clickhouse":           {"clickhouse": {9000, 9009}, "clickhouse-keeper": {9181}},
	"clickhouse-keeper":    {"clickhouse-keeper": {9234}},
	"clickhouse-backup":    {"clickhouse": {9000}},
	"elasticsearch":        {"elasticsearch": {9300}},
	"elasticsearch-backup": {"elasticsearch": {9200}},
	"kafka":                {"kafka": {9092, 9093}},
	"kafka-exporter":       {"kafka": {9092}},
	"schema-registry":      {"schema-registry": {8081}, "kafka": {9092}},
	"kafka-ui":             {"kafka": {9092}, "schema-registry": {8081}},
}

// dataWorkload is one workload of the data tier and the pod it runs.
type dataWorkload struct {
	kind, name  string
	serviceName string // a StatefulSet's governing Service
	headless    string // the HEADLESS its first container's start script announces names under
	pod         netpol.Pod
}

func (w dataWorkload) store() string { return w.pod.Labels["app.kubernetes.io/name"] }

func dataWorkloads(c *render.Cluster) []dataWorkload {
	var out []dataWorkload
	for _, a := range c.AllApps() {
		for _, o := range a.Objects {
			if o.GetNamespace() != dataNamespace {
				continue
			}
			if pod, ok := netpol.TemplatePod(o); ok {
				governing, _, _ := unstructured.NestedString(o.Object, "spec", "serviceName")
				out = append(out, dataWorkload{o.GetKind(), o.GetName(), governing, announcedUnder(o), pod})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// announcedUnder is the HEADLESS env of a workload's first container (Kafka's and Redis's start
// scripts announce <pod>.$HEADLESS.$POD_NAMESPACE.svc.cluster.local), "" without one.
func announcedUnder(o *unstructured.Unstructured) string {
	containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
	if len(containers) == 0 {
		return ""
	}
	env, _, _ := unstructured.NestedSlice(containers[0].(map[string]any), "env")
	for _, e := range env {
		if m := e.(map[string]any); m["name"] == "HEADLESS" {
			v, _ := m["value"].(string)
			return v
		}
	}
	return ""
}

func clusterPolicies(t *testing.T, c *render.Cluster) *netpol.Cluster {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, a := range c.AllApps() {
		objs = append(objs, a.Objects...)
	}
	np, err := netpol.New(objs)
	require.NoError(t, err)
	return np
}

// TestDataTierPaths: between every ordered pair of data-tier workloads, the NetworkPolicies allow
// exactly the ports of dataTierPaths — members of one store reach each other on their peer ports
// and on nothing else, in every environment.
func TestDataTierPaths(t *testing.T) {
	for _, c := range repo(t).Clusters {
		np := clusterPolicies(t, c)
		ws := dataWorkloads(c)
		var candidates []int32
		seen := map[int32]bool{}
		for _, w := range ws {
			for _, p := range w.pod.NamedPorts {
				if !seen[p] {
					seen[p] = true
					candidates = append(candidates, p)
				}
			}
		}
		for _, tos := range dataTierPaths {
			for _, ports := range tos {
				for _, p := range ports {
					if !seen[p] {
						seen[p] = true
						candidates = append(candidates, p)
					}
				}
			}
		}
		sort.Slice(candidates, func(i, j int) bool { return candidates[i] < candidates[j] })
		var wrong []string
		for _, src := range ws {
			for _, dst := range ws {
				want := fmt.Sprint(dataTierPaths[src.store()][dst.store()])
				if got := fmt.Sprint(np.AllowedPorts(src.pod, dst.pod, candidates)); got != want {
					wrong = append(wrong, fmt.Sprintf("%s %s -> %s %s: allowed %s, want %s", src.kind, src.name, dst.kind, dst.name, got, want))
				}
			}
		}
		assert.Empty(t, wrong, "%s: data-tier connections whose NetworkPolicies differ from dataTierPaths:\n%s", c.Name, strings.Join(wrong, "\n"))
	}
}

// redirectingStores are the stores that hand their clients the addresses of single members,
// not only a Service: a Kafka client bootstraps through the Service and then connects to each
// broker's advertised listener; a Redis Cluster client is redirected (MOVED/ASK, CLUSTER SHARDS)
// to the hostname a node announces. Both advertise <pod>.<governing headless Service>.<namespace>
// .svc.cluster.local (start.sh of each; the script harness checks what the scripts really write).
// The value selects the members that clients reach, and the port they use.
var redirectingStores = map[string]struct {
	memberLabels map[string]string
	port         int32
}{
	"kafka": {map[string]string{"app.kubernetes.io/name": "kafka", "kafka.cloudlab.io/broker": "true"}, 9092},
	"redis": {map[string]string{"app.kubernetes.io/name": "redis"}, 6379},
}

// TestStoreAddressesReachable: every address a store hands its clients is reachable from every
// service that declares the store — its client Services and, for stores that redirect clients to
// single members, each member's per-pod name — through the service's Sidecar (REGISTRY_ONLY: an
// unlisted host goes to Envoy's black hole) and the NetworkPolicies of both ends.
func TestStoreAddressesReachable(t *testing.T) {
	for _, c := range repo(t).Clusters {
		np := clusterPolicies(t, c)
		services := map[string]*unstructured.Unstructured{}
		for _, s := range objectsOf(c, "Service", dataNamespace) {
			services[s.GetName()] = s
		}
		sidecars := map[string][]string{}
		for _, sc := range objectsOf(c, "Sidecar", appNamespace) {
			egress, _, _ := unstructured.NestedSlice(sc.Object, "spec", "egress")
			for _, e := range egress {
				hosts, _, _ := unstructured.NestedStringSlice(e.(map[string]any), "hosts")
				sidecars[sc.GetName()] = append(sidecars[sc.GetName()], hosts...)
			}
		}
		var problems []string
		for _, d := range objectsOf(c, "Deployment", appNamespace) {
			client, _ := netpol.TemplatePod(d)
			hosts := sidecars[d.GetName()]
			problems = append(problems, unknownStoreHosts(d.GetName(), hosts, services)...)
			for _, store := range declaredStores(t, c, d.GetName()) {
				for _, addr := range storeAddresses(c, store, services) {
					if !slices.Contains(hosts, sidecarHost(addr.service)) {
						problems = append(problems, fmt.Sprintf("%s uses %s, whose clients are handed %s, but its Sidecar does not list %s (REGISTRY_ONLY: those connections go to the black hole)",
							d.GetName(), store, addr.what, sidecarHost(addr.service)))
					}
					for _, m := range addr.members {
						if !np.Allowed(client, m.pod, addr.port) {
							problems = append(problems, fmt.Sprintf("%s uses %s, but NetworkPolicies block it from %s port %d (%s)", d.GetName(), store, m.name, addr.port, addr.what))
						}
					}
				}
			}
		}
		assert.Empty(t, problems, "%s: store addresses the clients cannot reach:\n%s", c.Name, strings.Join(problems, "\n"))
	}
}

// unknownStoreHosts: every data-tier host a Sidecar lists must be a Service of the data tier
// (a host that names nothing imports nothing, and its traffic is dropped).
func unknownStoreHosts(client string, hosts []string, services map[string]*unstructured.Unstructured) []string {
	var out []string
	for _, h := range hosts {
		ns, fqdn, _ := strings.Cut(h, "/")
		if ns != dataNamespace {
			continue
		}
		if _, ok := services[strings.TrimSuffix(fqdn, "."+dataNamespace+".svc.cluster.local")]; !ok {
			out = append(out, fmt.Sprintf("Sidecar %s lists %s, which is no Service of %s", client, h, dataNamespace))
		}
	}
	return out
}

// storeAddress is one address a store hands its clients: a Service, and the members behind it
// that clients connect to on port.
type storeAddress struct {
	service, what string
	port          int32
	members       []dataWorkload
}

// storeAddresses: every client Service of a store (a Service selecting its pods that does not
// govern a StatefulSet's pod names) and, for a store that redirects clients to single members, the governing headless
// Service of each member StatefulSet, whose per-pod names the members advertise. A governing
// Service that is not headless or does not select its pods gives no per-pod names: reported as
// an address nobody can list.
func storeAddresses(c *render.Cluster, store string, services map[string]*unstructured.Unstructured) []storeAddress {
	var out []storeAddress
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	sort.Strings(names)
	governing := map[string]bool{}
	for _, w := range dataWorkloads(c) {
		governing[w.serviceName] = true
	}
	for _, n := range names {
		sel, _, _ := unstructured.NestedStringMap(services[n].Object, "spec", "selector")
		if sel["app.kubernetes.io/name"] == store && !governing[n] {
			out = append(out, storeAddress{service: n, what: "the Service " + n})
		}
	}
	r, redirects := redirectingStores[store]
	if !redirects {
		return out
	}
	for _, w := range dataWorkloads(c) {
		if w.kind != "StatefulSet" || !subsetOf(r.memberLabels, w.pod.Labels) {
			continue
		}
		name := w.serviceName
		what := fmt.Sprintf("the per-pod names <pod>.%s.%s.svc.cluster.local of %s", name, dataNamespace, w.name)
		// The start scripts announce <pod>.$HEADLESS.$POD_NAMESPACE: HEADLESS must be the Service
		// that governs the pod's name, or the name announced resolves to nothing.
		if w.headless != w.serviceName {
			name = fmt.Sprintf("(%s announces <pod>.%s, but its governing Service is %s)", w.name, w.headless, w.serviceName)
		}
		svc, ok := services[name]
		if ok {
			clusterIP, _, _ := unstructured.NestedString(svc.Object, "spec", "clusterIP")
			sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
			ok = clusterIP == "None" && subsetOf(sel, w.pod.Labels)
		}
		if !ok {
			name = "(no headless Service " + name + " selecting " + w.name + ")"
		}
		out = append(out, storeAddress{service: name, what: what, port: r.port, members: []dataWorkload{w}})
	}
	return out
}

func sidecarHost(service string) string {
	return fmt.Sprintf("%s/%s.%s.svc.cluster.local", dataNamespace, service, dataNamespace)
}

func subsetOf(sel, set map[string]string) bool {
	for k, v := range sel {
		if set[k] != v {
			return false
		}
	}
	return true
}

// declaredStores is what a service declares in the catalog (services/<name>/values.yaml).
func declaredStores(t *testing.T, c *render.Cluster, service string) []string {
	t.Helper()
	catalog, err := check.LoadCatalog("..")
	require.NoError(t, err)
	for _, s := range catalog.Services {
		if s.Name == service {
			return s.DataStores
		}
	}
	t.Fatalf("%s: Deployment %s is not a service of the catalog", c.Name, service)
	return nil
}
