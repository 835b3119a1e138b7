package policytest

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/check"
	"github.com/cloudlab/platform/policytest/internal/scrape"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The monitoring of staging and prod as Argo CD deploys it (issue 10, "What must be shown"),
// judged on the rendered objects of every Application, upstream charts included.
var scrapedEnvs = []string{"staging", "prod"}

// TestEverythingScraped: every Deployment and StatefulSet of staging and prod (services, stores,
// mesh, platform charts) is selected by a ServiceMonitor or PodMonitor that the Prometheus of
// kube-prometheus-stack selects, on a port its pod has (for sidecar-injected pods, also the
// istio-agent's merged stats, as the injector sets them up), and the NetworkPolicies of the pod
// admit Prometheus to that port.
func TestEverythingScraped(t *testing.T) {
	for _, env := range scrapedEnvs {
		sc, err := scrape.New(check.AllObjects(clusterNamed(t, env)))
		require.NoError(t, err)
		ws := sc.Workloads()
		require.NotEmpty(t, ws)
		assert.Empty(t, sc.Problems(), "%s: workloads Prometheus does not scrape:\n%s", env, strings.Join(sc.Problems(), "\n"))
		mesh := 0
		for _, w := range ws {
			targets, _ := sc.Targets(w)
			for _, tg := range targets {
				if tg.Port == scrape.InjectedPort {
					mesh++
					break
				}
			}
		}
		assert.Positive(t, mesh, "%s: no Envoy (the istio-agent's port %d) is scraped", env, scrape.InjectedPort)
		// Our own NetworkPolicies admit Prometheus to the metrics ports and nothing else (the
		// upstream charts' policies, e.g. Argo CD's, are theirs to write).
		for _, w := range ws {
			if w.Namespace == appNamespace || w.Namespace == dataNamespace {
				assert.Empty(t, sc.Unscraped(w), "%s: %s: the NetworkPolicies let Prometheus reach ports no monitor scrapes", env, w)
			}
		}
		t.Logf("%s: %d Deployments and StatefulSets, each scraped; %d of them through their Envoy's merged stats", env, len(ws), mesh)
	}
}

// TestMonitoringStorageAndReceivers: in staging and prod, Prometheus and Alertmanager keep their
// data on persistent volumes, Prometheus's retentionSize leaves room on its volume, and
// Alertmanager's global configuration is a rendered AlertmanagerConfig whose every receiver
// notifies somebody (no `null` receiver outside dev); every store has a PrometheusRule.
func TestMonitoringStorageAndReceivers(t *testing.T) {
	for _, env := range scrapedEnvs {
		objs := check.AllObjects(clusterNamed(t, env))
		assert.Empty(t, monitoringProblems(objs), "%s:\n%s", env, strings.Join(monitoringProblems(objs), "\n"))
	}
	// Dev runs Alertmanager nowhere, and its Prometheus on an emptyDir: nothing to assert but
	// that the rule per store holds there too.
	for _, p := range monitoringProblems(check.AllObjects(clusterNamed(t, "dev"))) {
		if strings.Contains(p, "PrometheusRule") {
			t.Error("dev: " + p)
		}
	}
}

// monitoringProblems checks the Prometheus and Alertmanager objects of one rendered cluster and
// the rules per store; one message per problem.
func monitoringProblems(objs []*unstructured.Unstructured) []string {
	var out []string
	byKind := map[string][]*unstructured.Unstructured{}
	for _, o := range objs {
		byKind[o.GetKind()] = append(byKind[o.GetKind()], o)
	}
	for _, kind := range []string{"Prometheus", "Alertmanager"} {
		if len(byKind[kind]) == 0 {
			out = append(out, "no "+kind+" object")
		}
		for _, o := range byKind[kind] {
			out = append(out, storageProblems(o)...)
		}
	}
	for _, am := range byKind["Alertmanager"] {
		out = append(out, receiverProblems(am, byKind["AlertmanagerConfig"], byKind["Secret"])...)
	}
	out = append(out, rulesPerStore(byKind["StatefulSet"], byKind["Deployment"], byKind["PrometheusRule"])...)
	return out
}

func storageProblems(o *unstructured.Unstructured) []string {
	field := map[string]string{"Prometheus": "storageSpec", "Alertmanager": "storage"}[o.GetKind()]
	size, _, _ := unstructured.NestedString(o.Object, "spec", "storage", "volumeClaimTemplate", "spec", "resources", "requests", "storage")
	class, _, _ := unstructured.NestedString(o.Object, "spec", "storage", "volumeClaimTemplate", "spec", "storageClassName")
	if size == "" || class == "" {
		return []string{fmt.Sprintf("%s %s: no persistent volume (spec.storage.volumeClaimTemplate with a storageClassName and a size; chart value %s): its data is lost on every reschedule", o.GetKind(), o.GetName(), field)}
	}
	if o.GetKind() != "Prometheus" {
		return nil
	}
	retention, _, _ := unstructured.NestedString(o.Object, "spec", "retentionSize")
	vol := resource.MustParse(size)
	// Prometheus's units are powers of two (1GB = 1024 MB): the same as Kubernetes' Gi.
	q, err := resource.ParseQuantity(strings.TrimSuffix(retention, "B") + "i")
	if retention == "" || err != nil {
		return []string{fmt.Sprintf("Prometheus %s: retentionSize %q: set it below the volume's %s, or a full disk stops ingestion", o.GetName(), retention, size)}
	}
	if q.Cmp(vol) >= 0 || float64(q.Value()) > 0.9*float64(vol.Value()) {
		return []string{fmt.Sprintf("Prometheus %s: retentionSize %s leaves less than 10%% of the %s volume for the WAL and compaction", o.GetName(), retention, size)}
	}
	return nil
}

// receiverProblems: the Alertmanager's global configuration names an AlertmanagerConfig of its
// namespace, every receiver of it has an integration, and no config Secret of the chart (whose
// default has a `null` receiver) is rendered.
func receiverProblems(am *unstructured.Unstructured, configs, secrets []*unstructured.Unstructured) []string {
	var out []string
	name, _, _ := unstructured.NestedString(am.Object, "spec", "alertmanagerConfiguration", "name")
	if name == "" {
		out = append(out, fmt.Sprintf("Alertmanager %s: no alertmanagerConfiguration: it would run the chart's default configuration", am.GetName()))
	}
	var global *unstructured.Unstructured
	for _, c := range configs {
		if c.GetName() == name && c.GetNamespace() == am.GetNamespace() {
			global = c
		}
	}
	if name != "" && global == nil {
		out = append(out, fmt.Sprintf("Alertmanager %s: alertmanagerConfiguration names AlertmanagerConfig %s/%s, which is not rendered", am.GetName(), am.GetNamespace(), name))
	}
	if global != nil {
		receivers, _, _ := unstructured.NestedSlice(global.Object, "spec", "receivers")
		for _, r := range receivers {
			if integrations(r.(map[string]any)) == 0 {
				out = append(out, fmt.Sprintf("AlertmanagerConfig %s: receiver %q notifies nobody: a null receiver is allowed only in dev", global.GetName(), r.(map[string]any)["name"]))
			}
		}
	}
	for _, s := range secrets {
		if s.GetName() == "alertmanager-"+am.GetName() {
			out = append(out, fmt.Sprintf("Secret %s: the chart's Alertmanager configuration is rendered (useExistingSecret is off); its default routes to a null receiver", s.GetName()))
		}
	}
	return out
}

// integrations counts a receiver's notifiers (every list field but name: slackConfigs,
// pagerdutyConfigs, webhookConfigs...).
func integrations(r map[string]any) int {
	n := 0
	for k, v := range r {
		if list, ok := v.([]any); ok && k != "name" {
			n += len(list)
		}
	}
	return n
}

// rulesPerStore: every store of the data tier (app.kubernetes.io/name of a StatefulSet or
// Deployment in the data namespace that is not a helper: exporter, backup, UI) has a
// PrometheusRule of its name.
func rulesPerStore(sets, deployments, rules []*unstructured.Unstructured) []string {
	stores := map[string]bool{}
	for _, o := range append(append([]*unstructured.Unstructured{}, sets...), deployments...) {
		name := o.GetLabels()["app.kubernetes.io/name"]
		if o.GetNamespace() != dataNamespace || name == "kafka-exporter" || name == "kafka-ui" {
			continue
		}
		stores[strings.TrimSuffix(name, "-keeper")] = true
	}
	have := map[string]bool{}
	for _, r := range rules {
		have[r.GetName()] = true
	}
	var out []string
	for s := range stores {
		if !have[s] {
			out = append(out, fmt.Sprintf("store %s has no PrometheusRule %s", s, s))
		}
	}
	sort.Strings(out)
	return out
}

// TestMonitoringChecksCatchBadInput proves the checks above can fail: each a copy of prod's
// rendered objects with one fault, and the exact message it must cause.
func TestMonitoringChecksCatchBadInput(t *testing.T) {
	prod := check.AllObjects(clusterNamed(t, "prod"))
	cases := monitoringFaults()
	// A NetworkPolicy that admits Prometheus to every port of Kafka.
	var wide []*unstructured.Unstructured
	for _, o := range prod {
		o = o.DeepCopy()
		if o.GetKind() == "NetworkPolicy" && o.GetName() == "kafka" {
			ingress, _, _ := unstructured.NestedSlice(o.Object, "spec", "ingress")
			last := ingress[len(ingress)-1].(map[string]any)
			delete(last, "ports")
			_ = unstructured.SetNestedSlice(o.Object, ingress, "spec", "ingress")
		}
		wide = append(wide, o)
	}
	sc, err := scrape.New(wide)
	require.NoError(t, err)
	for _, w := range sc.Workloads() {
		if w.Name == "kafka-broker" {
			assert.Equal(t, []int32{9092, 9093}, sc.Unscraped(w), "Prometheus admitted to every port of Kafka: the broker's other ports must be reported")
		}
	}
	for _, tc := range cases {
		var objs []*unstructured.Unstructured
		for _, o := range prod {
			if m := tc.mutate(o.DeepCopy()); m != nil {
				objs = append(objs, m)
			}
		}
		sc, err := scrape.New(objs)
		require.NoError(t, err)
		got := strings.Join(append(sc.Problems(), monitoringProblems(objs)...), "\n")
		assert.Contains(t, got, tc.want, "%s: the checks must report it", tc.name)
	}
}

// monitoringFault is one fault made in a copy of prod's objects (mutate returns the object
// changed, or nil to drop it) and the message the checks must give.
type monitoringFault struct {
	name   string
	mutate func(o *unstructured.Unstructured) *unstructured.Unstructured
	want   string
}

// monitoringFaults are TestMonitoringChecksCatchBadInput's cases.
func monitoringFaults() []monitoringFault {
	return []monitoringFault{
		{"Kafka's PodMonitor dropped", drop("PodMonitor", "kafka"),
			"StatefulSet cloudlab-data/kafka-broker is not scraped: no ServiceMonitor or PodMonitor that Prometheus selects selects its pods"},
		{"Kafka's NetworkPolicy without Prometheus", func(o *unstructured.Unstructured) *unstructured.Unstructured {
			if o.GetKind() == "NetworkPolicy" && o.GetName() == "kafka" {
				ingress, _, _ := unstructured.NestedSlice(o.Object, "spec", "ingress")
				_ = unstructured.SetNestedSlice(o.Object, ingress[:len(ingress)-1], "spec", "ingress")
			}
			return o
		}, "StatefulSet cloudlab-data/kafka-controller is not scraped: PodMonitor cloudlab-data/kafka: port http-metrics (9404): the NetworkPolicies do not admit Prometheus"},
		{"the sidecars' PodMonitor dropped", drop("PodMonitor", "istio-proxies"),
			"Deployment cloudlab/order: its Envoy (the istio-agent's merged stats, 15020) is not scraped"},
		{"the sidecars' PodMonitor keeping a container the pods lack", func(o *unstructured.Unstructured) *unstructured.Unstructured {
			if o.GetKind() == "PodMonitor" && o.GetName() == "istio-proxies" {
				eps, _, _ := unstructured.NestedSlice(o.Object, "spec", "podMetricsEndpoints")
				rls := eps[0].(map[string]any)["relabelings"].([]any)
				rls[0].(map[string]any)["regex"] = "envoy"
				_ = unstructured.SetNestedSlice(o.Object, eps, "spec", "podMetricsEndpoints")
			}
			return o
		}, "Deployment cloudlab/order: its Envoy (the istio-agent's merged stats, 15020) is not scraped"},
		{"a service's NetworkPolicy without the istio-agent's port", func(o *unstructured.Unstructured) *unstructured.Unstructured {
			if o.GetKind() == "NetworkPolicy" && o.GetName() == "order" {
				ingress, _, _ := unstructured.NestedSlice(o.Object, "spec", "ingress")
				last := ingress[len(ingress)-1].(map[string]any)
				last["ports"] = last["ports"].([]any)[:1]
				_ = unstructured.SetNestedSlice(o.Object, ingress, "spec", "ingress")
			}
			return o
		}, "Deployment cloudlab/order: its Envoy (the istio-agent's merged stats, 15020) is not scraped: PodMonitor monitoring/istio-proxies: container istio-proxy, on the port of annotation prometheus.io/port (15020): the NetworkPolicies do not admit Prometheus"},
		{"a PodMonitor endpoint on a port the pods lack", func(o *unstructured.Unstructured) *unstructured.Unstructured {
			if o.GetKind() == "PodMonitor" && o.GetName() == "external-secrets" {
				_ = unstructured.SetNestedSlice(o.Object, []any{map[string]any{"port": "http-metrics"}}, "spec", "podMetricsEndpoints")
			}
			return o
		}, "Deployment external-secrets/external-secrets is not scraped: PodMonitor monitoring/external-secrets: port http-metrics is no port of the pod"},
		{"Prometheus without a volume", func(o *unstructured.Unstructured) *unstructured.Unstructured {
			if o.GetKind() == "Prometheus" {
				unstructured.RemoveNestedField(o.Object, "spec", "storage")
			}
			return o
		}, "Prometheus kube-prometheus-stack-prometheus: no persistent volume"},
		{"retentionSize as large as the volume", func(o *unstructured.Unstructured) *unstructured.Unstructured {
			if o.GetKind() == "Prometheus" {
				_ = unstructured.SetNestedField(o.Object, "100GB", "spec", "retentionSize")
			}
			return o
		}, "Prometheus kube-prometheus-stack-prometheus: retentionSize 100GB leaves less than 10% of the 100Gi volume"},
		{"a null receiver", func(o *unstructured.Unstructured) *unstructured.Unstructured {
			if o.GetKind() == "AlertmanagerConfig" {
				receivers, _, _ := unstructured.NestedSlice(o.Object, "spec", "receivers")
				_ = unstructured.SetNestedSlice(o.Object, append(receivers, map[string]any{"name": "null"}), "spec", "receivers")
			}
			return o
		}, `AlertmanagerConfig cloudlab: receiver "null" notifies nobody`},
		{"Alertmanager on the chart's default configuration", func(o *unstructured.Unstructured) *unstructured.Unstructured {
			if o.GetKind() == "Alertmanager" {
				unstructured.RemoveNestedField(o.Object, "spec", "alertmanagerConfiguration")
			}
			return o
		}, "Alertmanager kube-prometheus-stack-alertmanager: no alertmanagerConfiguration"},
		{"Redis's rules dropped", drop("PrometheusRule", "redis"), "store redis has no PrometheusRule redis"},
	}
}

func drop(kind, name string) func(*unstructured.Unstructured) *unstructured.Unstructured {
	return func(o *unstructured.Unstructured) *unstructured.Unstructured {
		if o.GetKind() == kind && o.GetName() == name {
			return nil
		}
		return o
	}
}

// TestKubeStateMetricsPodLabels: kube-state-metrics exports, in kube_pod_labels, every
// data.cloudlab.io/<store> label the services' pods carry and their app.kubernetes.io/name: the
// recording rule cloudlab:service_data_stores:info reads them to inhibit the SLO alerts of a
// down store's clients (decision 0062); a label missing here silently disables that.
func TestKubeStateMetricsPodLabels(t *testing.T) {
	for _, env := range monitoringEnvs {
		c := clusterNamed(t, env)
		allowed := map[string]bool{}
		for _, d := range objectsOf(c, "Deployment", "monitoring") {
			if d.GetLabels()["app.kubernetes.io/name"] != "kube-state-metrics" {
				continue
			}
			containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
			for _, ct := range containers {
				args, _, _ := unstructured.NestedStringSlice(ct.(map[string]any), "args")
				for _, a := range args {
					list, ok := strings.CutPrefix(a, "--metric-labels-allowlist=")
					if !ok {
						continue
					}
					for _, res := range strings.Split(list, "],") {
						if pods, ok := strings.CutPrefix(res, "pods=["); ok {
							for _, l := range strings.Split(strings.TrimSuffix(pods, "]"), ",") {
								allowed[l] = true
							}
						}
					}
				}
			}
		}
		want := map[string]bool{"app.kubernetes.io/name": true}
		for _, d := range objectsOf(c, "Deployment", appNamespace) {
			labels, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "labels")
			for k := range labels {
				if strings.HasPrefix(k, "data.cloudlab.io/") {
					want[k] = true
				}
			}
		}
		for l := range want {
			assert.True(t, allowed[l], "%s: kube-state-metrics does not export pod label %s (kube-state-metrics.metricLabelsAllowlist, pods=[...])", env, l)
		}
	}
}

// jmxAgentOnlyInKafka: in a stub run's log of Kafka's start.sh, Kafka itself starts with the
// Prometheus JMX agent in KAFKA_OPTS and no tool the script runs does (a second JVM with the
// agent would find its port taken and fail: decision 0063).
func jmxAgentOnlyInKafka(t *testing.T, name, log string) {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		agent := strings.Contains(line, "KAFKA_OPTS=") && strings.Contains(line, "-javaagent:/jmx-agent/jmx_prometheus_javaagent.jar=9404:")
		switch {
		case strings.HasPrefix(line, "kafka-server-start.sh"):
			assert.True(t, agent, "%s: Kafka must start with the JMX agent (METRICS_AGENT in KAFKA_OPTS): %s", name, line)
		case strings.HasPrefix(line, "kafka-"):
			assert.False(t, agent, "%s: a tool start.sh runs must not load the JMX agent: %s", name, line)
		}
	}
}
