package policytest

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/netpol"
	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The span path of docs/observability.md#tracing, end to end, over one cluster's rendered objects:
//
//	sidecar / gateway / SDK --OTLP--> opentelemetry-collector (observability) --OTLP--> jaeger
//
// The mesh's tracing provider is what the Telemetry mesh-default in istio-system names; istiod's
// mesh config (ConfigMap istio, data.mesh, extensionProviders) says which Service and port that is
// (Istio's MeshConfig.ExtensionProvider.OpenTelemetryTracingProvider: service is a host name
// "<name>.<namespace>.svc.cluster.local", port a Service port).
const (
	meshRootNamespace = "istio-system"
	meshTelemetry     = "mesh-default"
	gatewayNamespace  = "istio-ingress"
	tracingConfigMap  = "tracing" // services/chart tracing.environmentConfigMap, without kustomize's hash suffix
)

// tracingEndpoint is a Service port that spans are sent to, and the pods behind it.
type tracingEndpoint struct {
	host       string // <service>.<namespace>.svc.cluster.local
	port       int32  // the Service port
	targetPort int32  // the container port it forwards to
	pods       []netpol.Pod
	workloads  []*unstructured.Unstructured
}

// tracingObjects indexes the objects of one cluster that the span path reads.
type tracingObjects struct {
	all []*unstructured.Unstructured
}

func (t tracingObjects) of(kind, namespace string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range t.all {
		if o.GetKind() == kind && (namespace == "" || o.GetNamespace() == namespace) {
			out = append(out, o)
		}
	}
	return out
}

func (t tracingObjects) one(kind, namespace, name string) *unstructured.Unstructured {
	for _, o := range t.of(kind, namespace) {
		if o.GetName() == name {
			return o
		}
	}
	return nil
}

// resolve finds the Service a host name and port mean ("<name>.<namespace>.svc.cluster.local",
// a Service port) and the workloads whose pods it selects. An error says what does not resolve.
func (t tracingObjects) resolve(host string, port int32) (tracingEndpoint, error) {
	ep := tracingEndpoint{host: host, port: port}
	name, rest, ok := strings.Cut(host, ".")
	namespace, suffix, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || suffix != "svc.cluster.local" {
		return ep, fmt.Errorf("%s is not a Service host name <name>.<namespace>.svc.cluster.local", host)
	}
	svc := t.one("Service", namespace, name)
	if svc == nil {
		return ep, fmt.Errorf("%s names no Service (nothing rendered in this cluster is Service %s/%s)", host, namespace, name)
	}
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	var target any
	for _, p := range ports {
		pm := p.(map[string]any)
		if n, _, _ := unstructured.NestedInt64(pm, "port"); int32(n) == port {
			target = pm["targetPort"]
			if target == nil {
				target = pm["port"]
			}
		}
	}
	if target == nil {
		return ep, fmt.Errorf("Service %s/%s has no port %d", namespace, name, port)
	}
	selector, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	for _, kind := range []string{"Deployment", "StatefulSet", "DaemonSet"} {
		for _, w := range t.of(kind, namespace) {
			pod, ok := netpol.TemplatePod(w)
			if !ok || len(selector) == 0 || !subsetOf(selector, pod.Labels) {
				continue
			}
			tp, err := containerPort(pod, target)
			if err != nil {
				return ep, fmt.Errorf("Service %s/%s port %d: %s %s: %w", namespace, name, port, kind, w.GetName(), err)
			}
			ep.targetPort = tp
			ep.pods = append(ep.pods, pod)
			ep.workloads = append(ep.workloads, w)
		}
	}
	if len(ep.pods) == 0 {
		return ep, fmt.Errorf("Service %s/%s selects no pod of a rendered workload", namespace, name)
	}
	return ep, nil
}

// containerPort resolves a Service targetPort (a number, or a container port's name).
func containerPort(pod netpol.Pod, target any) (int32, error) {
	switch v := target.(type) {
	case int64:
		return int32(v), nil
	case float64:
		return int32(v), nil
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			return int32(n), nil
		}
		if p, ok := pod.NamedPorts[v]; ok {
			return p, nil
		}
		return 0, fmt.Errorf("targetPort %q is no container port of its pods", v)
	}
	return 0, fmt.Errorf("targetPort %v has an unknown type", target)
}

// meshTracingProvider is the host and port of the OpenTelemetry provider that the mesh-wide
// Telemetry selects, looked up in istiod's mesh config.
func (t tracingObjects) meshTracingProvider() (host string, port int32, sampling float64, err error) {
	tel := t.one("Telemetry", meshRootNamespace, meshTelemetry)
	if tel == nil {
		return "", 0, 0, fmt.Errorf("no Telemetry %s/%s", meshRootNamespace, meshTelemetry)
	}
	tracing, _, _ := unstructured.NestedSlice(tel.Object, "spec", "tracing")
	if len(tracing) != 1 {
		return "", 0, 0, fmt.Errorf("Telemetry %s has %d tracing entries, want 1", meshTelemetry, len(tracing))
	}
	tr := tracing[0].(map[string]any)
	providers, _, _ := unstructured.NestedSlice(tr, "providers")
	if len(providers) != 1 {
		return "", 0, 0, fmt.Errorf("Telemetry %s tracing names %d providers, want 1", meshTelemetry, len(providers))
	}
	name, _, _ := unstructured.NestedString(providers[0].(map[string]any), "name")
	switch v := tr["randomSamplingPercentage"].(type) { // a YAML 10.0 may decode as an integer
	case float64:
		sampling = v
	case int64:
		sampling = float64(v)
	}
	cm := t.one("ConfigMap", meshRootNamespace, "istio")
	if cm == nil {
		return "", 0, 0, fmt.Errorf("no ConfigMap %s/istio (istiod's mesh config)", meshRootNamespace)
	}
	meshYAML, _, _ := unstructured.NestedString(cm.Object, "data", "mesh")
	var mesh struct {
		ExtensionProviders []struct {
			Name          string `json:"name"`
			OpenTelemetry *struct {
				Service string `json:"service"`
				Port    int32  `json:"port"`
			} `json:"opentelemetry"`
		} `json:"extensionProviders"`
	}
	if err := yaml.Unmarshal([]byte(meshYAML), &mesh); err != nil {
		return "", 0, 0, fmt.Errorf("istiod's mesh config: %w", err)
	}
	for _, p := range mesh.ExtensionProviders {
		if p.Name == name {
			if p.OpenTelemetry == nil {
				return "", 0, 0, fmt.Errorf("mesh tracing provider %q is not an opentelemetry provider", name)
			}
			return p.OpenTelemetry.Service, p.OpenTelemetry.Port, sampling, nil
		}
	}
	return "", 0, 0, fmt.Errorf("the Telemetry's tracing provider %q is not among istiod's extensionProviders", name)
}

// sidecarHosts is every egress host of the Sidecars in namespace whose workloadSelector selects pod.
func (t tracingObjects) sidecarHosts(namespace string, pod netpol.Pod) []string {
	var hosts []string
	for _, sc := range t.of("Sidecar", namespace) {
		sel, _, _ := unstructured.NestedStringMap(sc.Object, "spec", "workloadSelector", "labels")
		if !subsetOf(sel, pod.Labels) {
			continue
		}
		egress, _, _ := unstructured.NestedSlice(sc.Object, "spec", "egress")
		for _, e := range egress {
			h, _, _ := unstructured.NestedStringSlice(e.(map[string]any), "hosts")
			hosts = append(hosts, h...)
		}
	}
	return hosts
}

// sidecarAdmits: an Istio Sidecar egress host "<namespace>/<dnsName>" imports host when the
// namespace part is that of the Service (or "*") and the name is the host or "*".
func sidecarAdmits(hosts []string, host string) bool {
	svcNamespace := strings.Split(host, ".")[1]
	for _, h := range hosts {
		ns, name, _ := strings.Cut(h, "/")
		if (ns == svcNamespace || ns == "*") && (name == host || name == "*") {
			return true
		}
	}
	return false
}

// envValue is the value of a container's env var, or "" (with ok false) when it is not set.
func envValue(w *unstructured.Unstructured, name string) (value string, ref map[string]any, ok bool) {
	cs, _, _ := unstructured.NestedSlice(w.Object, "spec", "template", "spec", "containers")
	if len(cs) == 0 {
		return "", nil, false
	}
	env, _, _ := unstructured.NestedSlice(cs[0].(map[string]any), "env")
	for _, e := range env {
		em := e.(map[string]any)
		if em["name"] == name {
			v, _ := em["value"].(string)
			r, _, _ := unstructured.NestedMap(em, "valueFrom", "configMapKeyRef")
			return v, r, true
		}
	}
	return "", nil, false
}

// tracingPathProblems checks the span path of one cluster's rendered objects and returns what is
// broken, one sentence each (empty: the path is open). When the cluster does not run the
// collector (dev, where tracing is opt-in), collectorDeployed is false and only the senders' side
// is checked: every service's Sidecar lists the provider's host and its SDK exports to it.
func tracingPathProblems(objs []*unstructured.Unstructured) (problems []string, collectorDeployed bool) {
	t := tracingObjects{all: objs}
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	host, port, sampling, err := t.meshTracingProvider()
	if err != nil {
		return []string{err.Error()}, false
	}
	np, err := netpol.New(objs)
	if err != nil {
		return []string{err.Error()}, false
	}
	collector, resolveErr := t.resolve(host, port)
	collectorDeployed = resolveErr == nil
	if !collectorDeployed && t.one("Namespace", "", strings.Split(host, ".")[1]) != nil && len(t.of("Deployment", strings.Split(host, ".")[1])) > 0 {
		// The collector's namespace runs workloads, so the provider must resolve in it.
		fail("the mesh's tracing provider %s:%d: %v", host, port, resolveErr)
	}

	// Senders: every service (its sidecar, and its SDK through the sidecar) and the ingress gateway.
	services := t.of("Deployment", appNamespace)
	if len(services) == 0 {
		fail("no Deployment in %s", appNamespace)
	}
	for _, d := range services {
		problems = append(problems, serviceSpanProblems(t, np, d, host, port, sampling, collectorDeployed, collector)...)
	}
	if !collectorDeployed {
		return problems, false
	}
	problems = append(problems, gatewaySpanProblems(t, np, host, collector)...)
	return append(problems, collectorExportProblems(t, np, collector)...), true
}

// serviceSpanProblems checks one service's side of the span path: its Sidecar lists the
// provider's host, its SDK exports there with the mesh's sampling ratio (sampling: percent) from
// the environment's ConfigMap, and — where the collector runs — NetworkPolicies let it reach it.
func serviceSpanProblems(t tracingObjects, np *netpol.Cluster, d *unstructured.Unstructured, host string, port int32, sampling float64, collectorDeployed bool, collector tracingEndpoint) (problems []string) {
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	pod, _ := netpol.TemplatePod(d)
	if !sidecarAdmits(t.sidecarHosts(appNamespace, pod), host) {
		fail("%s: its Sidecar does not list %s (REGISTRY_ONLY: the sidecar's and the SDK's spans go to the black hole)", d.GetName(), host)
	}
	endpoint, _, _ := envValue(d, "OTEL_EXPORTER_OTLP_ENDPOINT")
	u, err := url.Parse(endpoint)
	if endpoint == "" || err != nil || u.Port() == "" {
		fail("%s: OTEL_EXPORTER_OTLP_ENDPOINT %q is not http://<host>:<port>", d.GetName(), endpoint)
	} else if sdkPort, _ := strconv.Atoi(u.Port()); u.Hostname() != host || int32(sdkPort) != port {
		fail("%s: OTEL_EXPORTER_OTLP_ENDPOINT %s is not the mesh's tracing provider %s", d.GetName(), endpoint, net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	if v, _, _ := envValue(d, "OTEL_SERVICE_NAME"); v != d.GetName() {
		fail("%s: OTEL_SERVICE_NAME is %q, want the service's name", d.GetName(), v)
	}
	if _, ref, _ := envValue(d, "OTEL_TRACES_SAMPLER_ARG"); ref == nil {
		fail("%s: OTEL_TRACES_SAMPLER_ARG does not come from the environment's ConfigMap %s", d.GetName(), tracingConfigMap)
	} else {
		name, _ := ref["name"].(string)
		key, _ := ref["key"].(string)
		cm := t.one("ConfigMap", appNamespace, name)
		v, _, _ := unstructured.NestedString(cmOrEmpty(cm).Object, "data", key)
		ratio, err := strconv.ParseFloat(v, 64)
		switch {
		case cm == nil || !strings.HasPrefix(name, tracingConfigMap):
			fail("%s: OTEL_TRACES_SAMPLER_ARG reads ConfigMap %q, which is not rendered", d.GetName(), name)
		case err != nil:
			fail("%s: OTEL_TRACES_SAMPLER_ARG %q is not a number", d.GetName(), v)
		case math.Abs(ratio*100-sampling) > 1e-9:
			fail("%s: OTEL_TRACES_SAMPLER_ARG %s samples %g %% of the traces it starts, the mesh's Telemetry %g %%", d.GetName(), v, ratio*100, sampling)
		}
	}
	if !collectorDeployed {
		return problems
	}
	for _, c := range collector.pods {
		if !np.Allowed(pod, c, collector.targetPort) {
			fail("%s: NetworkPolicies block it from the collector %s port %d", d.GetName(), host, collector.targetPort)
		}
	}
	return problems
}

// gatewaySpanProblems: every ingress gateway's pods may reach the collector.
func gatewaySpanProblems(t tracingObjects, np *netpol.Cluster, host string, collector tracingEndpoint) (problems []string) {
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	gateways := 0
	for _, g := range t.of("Deployment", gatewayNamespace) {
		pod, _ := netpol.TemplatePod(g)
		if pod.Labels["istio"] != "ingressgateway" {
			continue
		}
		gateways++
		for _, c := range collector.pods {
			if !np.Allowed(pod, c, collector.targetPort) {
				fail("ingress gateway %s: NetworkPolicies block it from the collector %s port %d", g.GetName(), host, collector.targetPort)
			}
		}
	}
	if gateways == 0 {
		fail("no ingress gateway Deployment (label istio=ingressgateway) in %s", gatewayNamespace)
	}

	return problems
}

// collectorExportProblems: every OTLP exporter of the collector's traces pipeline resolves to a
// Service whose pods NetworkPolicies let the collector reach.
func collectorExportProblems(t tracingObjects, np *netpol.Cluster, collector tracingEndpoint) (problems []string) {
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	// The collector's exporter: every OTLP exporter of the traces pipeline resolves and is admitted.
	for _, w := range collector.workloads {
		exporters, err := t.collectorExporters(w)
		if err != nil {
			fail("collector %s: %v", w.GetName(), err)
			continue
		}
		if len(exporters) == 0 {
			fail("collector %s: its traces pipeline exports to no OTLP endpoint", w.GetName())
		}
		cpod, _ := netpol.TemplatePod(w)
		for _, e := range exporters {
			h, p, err := net.SplitHostPort(e)
			pn, _ := strconv.Atoi(p)
			if err != nil {
				fail("collector %s: exporter endpoint %q is not host:port", w.GetName(), e)
				continue
			}
			backend, err := t.resolve(h, int32(pn))
			if err != nil {
				fail("collector %s exports to %s: %v", w.GetName(), e, err)
				continue
			}
			for _, b := range backend.pods {
				if !np.Allowed(cpod, b, backend.targetPort) {
					fail("collector %s: NetworkPolicies block its export to %s port %d", w.GetName(), h, backend.targetPort)
				}
			}
		}
	}
	return problems
}

func cmOrEmpty(cm *unstructured.Unstructured) *unstructured.Unstructured {
	if cm == nil {
		return &unstructured.Unstructured{Object: map[string]any{}}
	}
	return cm
}

// collectorExporters is the endpoint (host:port) of every otlp exporter ("otlp" or "otlp/<name>")
// of the traces pipeline in the collector's configuration: the ConfigMap the workload mounts,
// key relay (the opentelemetry-collector chart's --config=/conf/relay.yaml).
func (t tracingObjects) collectorExporters(w *unstructured.Unstructured) ([]string, error) {
	volumes, _, _ := unstructured.NestedSlice(w.Object, "spec", "template", "spec", "volumes")
	var cmName string
	for _, v := range volumes {
		if n, ok, _ := unstructured.NestedString(v.(map[string]any), "configMap", "name"); ok {
			cmName = n
		}
	}
	cm := t.one("ConfigMap", w.GetNamespace(), cmName)
	if cm == nil {
		return nil, fmt.Errorf("mounts no rendered ConfigMap (%q)", cmName)
	}
	relay, _, _ := unstructured.NestedString(cm.Object, "data", "relay")
	var cfg struct {
		Exporters map[string]struct {
			Endpoint string `json:"endpoint"`
		} `json:"exporters"`
		Service struct {
			Pipelines map[string]struct {
				Exporters []string `json:"exporters"`
			} `json:"pipelines"`
		} `json:"service"`
	}
	if err := yaml.Unmarshal([]byte(relay), &cfg); err != nil {
		return nil, fmt.Errorf("ConfigMap %s key relay: %w", cmName, err)
	}
	var out []string
	for _, name := range cfg.Service.Pipelines["traces"].Exporters {
		if name == "otlp" || strings.HasPrefix(name, "otlp/") {
			out = append(out, cfg.Exporters[name].Endpoint)
		}
	}
	return out, nil
}

// TestTracingPath: in every cluster the spans of every service's sidecar and SDK and of the
// ingress gateway reach the collector the mesh's tracing provider names (Sidecar egress, both
// ends' NetworkPolicies, the Service port to a container port), the collector's exporter reaches
// Jaeger, and every service samples the traces it starts at the mesh's rate. The collector runs
// in staging and prod; dev (tracing opt-in) checks the senders' side only.
func TestTracingPath(t *testing.T) {
	for _, c := range repo(t).Clusters {
		problems, deployed := tracingPathProblems(clusterObjects(c))
		assert.Empty(t, problems, "%s: the span path is broken:\n%s", c.Name, strings.Join(problems, "\n"))
		assert.Equal(t, c.Name != "dev", deployed, "%s: the collector runs in staging and prod, and in dev only when opted in", c.Name)
	}
}

// TestTracingPathCatchesFaults: each fault, put into staging's rendered objects, is reported.
func TestTracingPathCatchesFaults(t *testing.T) {
	var staging *render.Cluster
	for _, c := range repo(t).Clusters {
		if c.Name == "staging" {
			staging = c
		}
	}
	require.NotNil(t, staging)
	faults := []struct {
		name   string
		break_ func(objs []*unstructured.Unstructured)
		want   string
	}{
		{"a Sidecar without the collector", func(objs []*unstructured.Unstructured) {
			sc := find(objs, "Sidecar", appNamespace, "cart")
			egress, _, _ := unstructured.NestedSlice(sc.Object, "spec", "egress")
			hosts, _, _ := unstructured.NestedStringSlice(egress[0].(map[string]any), "hosts")
			hosts = slices.DeleteFunc(hosts, func(h string) bool { return strings.HasPrefix(h, "observability/") })
			require.NoError(t, unstructured.SetNestedStringSlice(egress[0].(map[string]any), hosts, "hosts"))
			require.NoError(t, unstructured.SetNestedSlice(sc.Object, egress, "spec", "egress"))
		}, "cart: its Sidecar does not list opentelemetry-collector.observability.svc.cluster.local"},
		{"a service NetworkPolicy without egress to the collector", func(objs []*unstructured.Unstructured) {
			np := find(objs, "NetworkPolicy", appNamespace, "order")
			egress, _, _ := unstructured.NestedSlice(np.Object, "spec", "egress")
			egress = slices.DeleteFunc(egress, func(e any) bool { return strings.Contains(fmt.Sprint(e), "observability") })
			require.NoError(t, unstructured.SetNestedSlice(np.Object, egress, "spec", "egress"))
		}, "order: NetworkPolicies block it from the collector"},
		{"the collector not admitting the gateway", func(objs []*unstructured.Unstructured) {
			np := find(objs, "NetworkPolicy", "observability", "opentelemetry-collector")
			ingress, _, _ := unstructured.NestedSlice(np.Object, "spec", "ingress")
			from, _, _ := unstructured.NestedSlice(ingress[0].(map[string]any), "from")
			from = slices.DeleteFunc(from, func(p any) bool { return strings.Contains(fmt.Sprint(p), gatewayNamespace) })
			require.NoError(t, unstructured.SetNestedSlice(ingress[0].(map[string]any), from, "from"))
			require.NoError(t, unstructured.SetNestedSlice(np.Object, ingress, "spec", "ingress"))
		}, "ingress gateway istio-ingressgateway: NetworkPolicies block it from the collector"},
		{"the mesh provider naming the old monitoring namespace", func(objs []*unstructured.Unstructured) {
			cm := find(objs, "ConfigMap", meshRootNamespace, "istio")
			mesh, _, _ := unstructured.NestedString(cm.Object, "data", "mesh")
			mesh = strings.ReplaceAll(mesh, "opentelemetry-collector.observability.svc", "opentelemetry-collector.monitoring.svc")
			require.NoError(t, unstructured.SetNestedField(cm.Object, mesh, "data", "mesh"))
		}, "its Sidecar does not list opentelemetry-collector.monitoring.svc.cluster.local"},
		{"the mesh provider on a port the Service does not have", func(objs []*unstructured.Unstructured) {
			cm := find(objs, "ConfigMap", meshRootNamespace, "istio")
			mesh, _, _ := unstructured.NestedString(cm.Object, "data", "mesh")
			mesh = strings.ReplaceAll(mesh, "port: 4317", "port: 14250")
			require.NoError(t, unstructured.SetNestedField(cm.Object, mesh, "data", "mesh"))
		}, "Service observability/opentelemetry-collector has no port 14250"},
		{"a sampling ratio that differs from the mesh's", func(objs []*unstructured.Unstructured) {
			for _, cm := range objs {
				if cm.GetKind() == "ConfigMap" && cm.GetNamespace() == appNamespace && strings.HasPrefix(cm.GetName(), tracingConfigMap+"-") {
					require.NoError(t, unstructured.SetNestedField(cm.Object, "1.0", "data", "OTEL_TRACES_SAMPLER_ARG"))
				}
			}
		}, "samples 100 % of the traces it starts, the mesh's Telemetry 10 %"},
		{"Jaeger not admitting the collector", func(objs []*unstructured.Unstructured) {
			np := find(objs, "NetworkPolicy", "observability", "jaeger")
			require.NoError(t, unstructured.SetNestedSlice(np.Object, []any{}, "spec", "ingress"))
		}, "NetworkPolicies block its export to jaeger.observability.svc.cluster.local port 4317"},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			objs := clusterObjects(staging)
			for i, o := range objs {
				objs[i] = o.DeepCopy()
			}
			f.break_(objs)
			problems, _ := tracingPathProblems(objs)
			assert.Contains(t, strings.Join(problems, "\n"), f.want)
		})
	}
}

func clusterObjects(c *render.Cluster) []*unstructured.Unstructured {
	var objs []*unstructured.Unstructured
	for _, a := range c.AllApps() {
		objs = append(objs, a.Objects...)
	}
	return objs
}

func find(objs []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == namespace && o.GetName() == name {
			return o
		}
	}
	panic(fmt.Sprintf("no %s %s/%s", kind, namespace, name))
}

// jaegerStorageProblems: where Jaeger's span store (extension jaeger_storage of its user-config,
// the jaeger chart's ConfigMap user-config) is Elasticsearch, every server URL resolves to a
// Service whose pods Jaeger's NetworkPolicies let it reach. wantElasticsearch: the environment
// must keep its spans in Elasticsearch (staging, prod), not in memory.
func jaegerStorageProblems(objs []*unstructured.Unstructured, wantElasticsearch bool) []string {
	t := tracingObjects{all: objs}
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	cm := t.one("ConfigMap", observabilityNS, "user-config")
	d := t.one("Deployment", observabilityNS, "jaeger")
	if cm == nil || d == nil {
		return []string{"no Jaeger Deployment and ConfigMap user-config in " + observabilityNS}
	}
	text, _, _ := unstructured.NestedString(cm.Object, "data", "user-config.yaml")
	var cfg struct {
		Extensions struct {
			Storage struct {
				Backends map[string]struct {
					Elasticsearch *struct {
						ServerURLs []string `json:"server_urls"`
					} `json:"elasticsearch"`
				} `json:"backends"`
			} `json:"jaeger_storage"`
		} `json:"extensions"`
	}
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		return []string{"Jaeger's user-config: " + err.Error()}
	}
	np, err := netpol.New(objs)
	if err != nil {
		return []string{err.Error()}
	}
	jaeger, _ := netpol.TemplatePod(d)
	elasticsearch := false
	for name, b := range cfg.Extensions.Storage.Backends {
		if b.Elasticsearch == nil {
			continue
		}
		elasticsearch = true
		for _, raw := range b.Elasticsearch.ServerURLs {
			u, err := url.Parse(raw)
			port, _ := strconv.Atoi(u.Port())
			if err != nil || port == 0 {
				fail("Jaeger storage %s: server URL %q has no host:port", name, raw)
				continue
			}
			es, err := t.resolve(u.Hostname(), int32(port))
			if err != nil {
				fail("Jaeger storage %s at %s: %v", name, raw, err)
				continue
			}
			for _, p := range es.pods {
				if !np.Allowed(jaeger, p, es.targetPort) {
					fail("Jaeger storage %s: NetworkPolicies block Jaeger from %s port %d", name, u.Hostname(), es.targetPort)
				}
			}
		}
	}
	if wantElasticsearch && !elasticsearch {
		fail("Jaeger keeps its spans in memory: staging and prod store them in the logging Elasticsearch")
	}
	return problems
}

// TestJaegerStorage: staging and prod keep spans in the logging Elasticsearch, reachable from
// Jaeger; a NetworkPolicy without that egress, or a store URL naming nothing, is reported.
func TestJaegerStorage(t *testing.T) {
	for _, c := range repo(t).Clusters {
		if c.Name == "dev" {
			continue // tracing is opt-in in dev, and in memory there
		}
		assert.Empty(t, jaegerStorageProblems(clusterObjects(c), true), c.Name)
		if c.Name != "prod" {
			continue
		}
		objs := clusterObjects(c)
		for i, o := range objs {
			objs[i] = o.DeepCopy()
		}
		np := find(objs, "NetworkPolicy", observabilityNS, "jaeger")
		require.NoError(t, unstructured.SetNestedSlice(np.Object, []any{}, "spec", "egress"))
		assert.Contains(t, strings.Join(jaegerStorageProblems(objs, true), "\n"), "NetworkPolicies block Jaeger from elasticsearch.observability.svc.cluster.local port 9200")
		cm := find(objs, "ConfigMap", observabilityNS, "user-config")
		text, _, _ := unstructured.NestedString(cm.Object, "data", "user-config.yaml")
		require.NoError(t, unstructured.SetNestedField(cm.Object, strings.ReplaceAll(text, "elasticsearch.observability.svc", "elasticsearch.cloudlab-logs.svc"), "data", "user-config.yaml"))
		assert.Contains(t, strings.Join(jaegerStorageProblems(objs, true), "\n"), "names no Service")
	}
}
