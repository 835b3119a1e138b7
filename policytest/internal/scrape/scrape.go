// Package scrape decides, from the rendered objects of one cluster, what the Prometheus of
// kube-prometheus-stack will scrape: which ServiceMonitors and PodMonitors its selectors pick up,
// which pods each of them selects and on which port, and whether the NetworkPolicies let
// Prometheus reach that port. It reads the objects as the Prometheus Operator does
// (https://prometheus-operator.dev/docs/api-reference/api/):
//
//   - Prometheus.spec.{serviceMonitor,podMonitor}Selector: nil selects no monitor, {} every one;
//     the matching *NamespaceSelector: nil means the Prometheus object's own namespace, {} every
//     namespace;
//   - a monitor's spec.namespaceSelector: any: true, or matchNames, or (empty) its own namespace;
//   - a PodMonitor endpoint names a container port (port) or gives its number (portNumber);
//   - a ServiceMonitor endpoint names a Service port, whose targetPort (a number or a container
//     port's name) is the port scraped on each pod the Service selects.
//
// A PodMonitor endpoint without port and portNumber targets every declared container port; its
// relabelings are read for the two forms Istio's example uses: a keep on the container's name or
// on an annotation's presence, and a replace of __address__ with the pod annotation
// prometheus.io/port.
//
// Istio's sidecar injector adds to every injected pod (namespace label istio-injection=enabled,
// or pod label sidecar.istio.io/inject=true) the label security.istio.io/tlsMode, the container
// istio-proxy (declaring Envoy's port 15090), and, with metrics merging (meshConfig
// enablePrometheusMerge, on by default), the annotations prometheus.io/scrape: "true" and
// prometheus.io/port: "15020", where the istio-agent serves the merged stats. The rendered pod
// templates do not have them yet, so Workloads adds them the way the injector will.
package scrape

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cloudlab/platform/policytest/internal/netpol"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// The injector's additions to a pod (istiod chart 1.30: the sidecar and gateway templates of the
// ConfigMap istio-sidecar-injector, and the metrics-merging annotations of the webhook).
const (
	InjectedContainer = "istio-proxy"
	EnvoyPort         = 15090 // declared by the template (http-envoy-prom)
	InjectedPort      = 15020 // the istio-agent's status port (values.global.proxy.statusPort)
	InjectedLabel     = "security.istio.io/tlsMode"
)

// Workload is a Deployment or StatefulSet and the pod it runs, as Prometheus and the network see
// it (injected additions included).
type Workload struct {
	Kind, Namespace, Name string
	Pod                   netpol.Pod
	ports                 map[int32]bool     // every port something in the pod serves on
	containers            map[string][]int32 // declared container ports, by container
	annotations           map[string]string  // the pod's
	// Injected: the sidecar injector adds an Envoy to the pod, whose merged stats
	// (InjectedPort) must be scraped besides whatever the application serves.
	Injected bool
}

func (w Workload) String() string { return fmt.Sprintf("%s %s/%s", w.Kind, w.Namespace, w.Name) }

// Target is one way Prometheus scrapes a workload: the monitor, and the pod port.
type Target struct {
	Monitor string // "PodMonitor ns/name" or "ServiceMonitor ns/name"
	Port    int32
}

// Cluster is what Prometheus sees of one rendered cluster.
type Cluster struct {
	objs       []*unstructured.Unstructured
	namespaces map[string]labels.Set
	policies   *netpol.Cluster
	Prometheus netpol.Pod // the pods of the (first) Prometheus object
	prometheus *unstructured.Unstructured
}

// New reads a cluster's objects. An error means there is no Prometheus object, or a
// NetworkPolicy cannot be read.
func New(objs []*unstructured.Unstructured) (*Cluster, error) {
	np, err := netpol.New(objs)
	if err != nil {
		return nil, err
	}
	c := &Cluster{objs: objs, namespaces: map[string]labels.Set{}, policies: np}
	for _, o := range objs {
		switch {
		case o.GetKind() == "Namespace":
			set := labels.Set{"kubernetes.io/metadata.name": o.GetName()}
			for k, v := range o.GetLabels() {
				set[k] = v
			}
			c.namespaces[o.GetName()] = set
		case o.GetKind() == "Prometheus" && c.prometheus == nil:
			c.prometheus = o
		}
	}
	if c.prometheus == nil {
		return nil, fmt.Errorf("no Prometheus object: nothing scrapes this cluster")
	}
	// The labels the operator gives the Prometheus pods (statefulset.go of prometheus-operator).
	name := c.prometheus.GetName()
	c.Prometheus = netpol.Pod{Namespace: c.prometheus.GetNamespace(), Labels: map[string]string{
		"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": name,
		"app.kubernetes.io/managed-by": "prometheus-operator", "prometheus": name,
		"operator.prometheus.io/name": name,
	}}
	return c, nil
}

func (c *Cluster) nsLabels(ns string) labels.Set {
	if set, ok := c.namespaces[ns]; ok {
		return set
	}
	return labels.Set{"kubernetes.io/metadata.name": ns}
}

// Workloads are the cluster's Deployments and StatefulSets, sorted, with what the sidecar
// injector adds to the pods it injects.
func (c *Cluster) Workloads() []Workload {
	var out []Workload
	for _, o := range c.objs {
		if o.GetKind() != "Deployment" && o.GetKind() != "StatefulSet" {
			continue
		}
		pod, ok := netpol.TemplatePod(o)
		if !ok {
			continue
		}
		w := Workload{Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName(), Pod: pod,
			ports: map[int32]bool{}, containers: map[string][]int32{}, annotations: map[string]string{}}
		annotations, _, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "annotations")
		for k, v := range annotations {
			w.annotations[k] = v
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, ct := range containers {
			name, _ := ct.(map[string]any)["name"].(string)
			w.containers[name] = []int32{}
			ports, _, _ := unstructured.NestedSlice(ct.(map[string]any), "ports")
			for _, p := range ports {
				if n, ok := p.(map[string]any)["containerPort"].(int64); ok {
					w.ports[int32(n)] = true
					w.containers[name] = append(w.containers[name], int32(n))
				}
			}
		}
		if w.Injected = c.injected(pod); w.Injected {
			w.Pod.Labels = copyWith(pod.Labels, InjectedLabel, "istio")
			if _, ok := w.containers[InjectedContainer]; !ok || len(w.containers[InjectedContainer]) == 0 {
				w.containers[InjectedContainer] = []int32{EnvoyPort}
			}
			w.annotations["prometheus.io/scrape"], w.annotations["prometheus.io/port"] = "true", fmt.Sprint(InjectedPort)
			w.ports[EnvoyPort], w.ports[InjectedPort] = true, true
		}
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// injected: the injector's rule (namespace label istio-injection=enabled, or pod label
// sidecar.istio.io/inject=true; the pod label false opts out).
func (c *Cluster) injected(p netpol.Pod) bool {
	switch p.Labels["sidecar.istio.io/inject"] {
	case "true":
		return true
	case "false":
		return false
	}
	return c.nsLabels(p.Namespace)["istio-injection"] == "enabled"
}

func copyWith(in map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for key, val := range in {
		out[key] = val
	}
	return out
}

// Targets lists every way Prometheus scrapes w on a port the pod has; blocked says, for each
// monitor that selects w but cannot scrape it, why (the port does not exist on the pod, or the
// NetworkPolicies do not admit Prometheus to it).
func (c *Cluster) Targets(w Workload) (targets []Target, blocked []string) {
	for _, m := range c.monitors("PodMonitor") {
		if !c.monitorSelectsNamespace(m, w.Namespace) || !selects(m, "selector", w.Pod.Labels) {
			continue
		}
		eps, _, _ := unstructured.NestedSlice(m.Object, "spec", "podMetricsEndpoints")
		for _, ep := range eps {
			e := ep.(map[string]any)
			monitor := "PodMonitor " + m.GetNamespace() + "/" + m.GetName()
			if name, ok := e["port"].(string); ok && name != "" {
				targets, blocked = c.judge(w, monitor, "port "+name, w.Pod.NamedPorts[name], targets, blocked)
				continue
			}
			if n, ok := e["portNumber"].(int64); ok {
				port := int32(n)
				if !w.ports[port] {
					port = 0
				}
				targets, blocked = c.judge(w, monitor, fmt.Sprintf("port number %d", n), port, targets, blocked)
				continue
			}
			ports, what := relabeledPorts(w, e)
			if len(ports) == 0 {
				blocked = append(blocked, fmt.Sprintf("%s: %s", monitor, what))
			}
			for _, p := range ports {
				if !w.ports[p] {
					p = 0
				}
				targets, blocked = c.judge(w, monitor, what, p, targets, blocked)
			}
		}
	}
	for _, m := range c.monitors("ServiceMonitor") {
		for _, svc := range c.servicesOf(m, w) {
			eps, _, _ := unstructured.NestedSlice(m.Object, "spec", "endpoints")
			for _, ep := range eps {
				name, _ := ep.(map[string]any)["port"].(string)
				port := servicePortOnPod(svc, name, w.Pod)
				what := fmt.Sprintf("Service %s port %s", svc.GetName(), name)
				targets, blocked = c.judge(w, "ServiceMonitor "+m.GetNamespace()+"/"+m.GetName(), what, port, targets, blocked)
			}
		}
	}
	return targets, blocked
}

func (c *Cluster) judge(w Workload, monitor, what string, port int32, targets []Target, blocked []string) ([]Target, []string) {
	switch {
	case port == 0:
		// An endpoint whose port the pod does not have is how one monitor serves several
		// components with different ports: only a problem if no endpoint works (the caller).
		return targets, append(blocked, fmt.Sprintf("%s: %s is no port of the pod", monitor, what))
	case !c.policies.Allowed(c.Prometheus, w.Pod, port):
		return targets, append(blocked, fmt.Sprintf("%s: %s (%d): the NetworkPolicies do not admit Prometheus", monitor, what, port))
	}
	return append(targets, Target{Monitor: monitor, Port: port}), blocked
}

// monitors are the ServiceMonitors or PodMonitors the Prometheus object selects.
func (c *Cluster) monitors(kind string) []*unstructured.Unstructured {
	field := map[string]string{"PodMonitor": "podMonitor", "ServiceMonitor": "serviceMonitor"}[kind]
	var out []*unstructured.Unstructured
	for _, m := range c.objs {
		if m.GetKind() != kind {
			continue
		}
		if !selects(c.prometheus, field+"Selector", m.GetLabels()) {
			continue
		}
		nsSel, found, _ := unstructured.NestedMap(c.prometheus.Object, "spec", field+"NamespaceSelector")
		if !found || nsSel == nil {
			if m.GetNamespace() != c.prometheus.GetNamespace() {
				continue
			}
		} else if !selects(c.prometheus, field+"NamespaceSelector", c.nsLabels(m.GetNamespace())) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// monitorSelectsNamespace: the monitor's spec.namespaceSelector admits ns.
func (c *Cluster) monitorSelectsNamespace(m *unstructured.Unstructured, ns string) bool {
	if any, _, _ := unstructured.NestedBool(m.Object, "spec", "namespaceSelector", "any"); any {
		return true
	}
	names, found, _ := unstructured.NestedStringSlice(m.Object, "spec", "namespaceSelector", "matchNames")
	if !found || len(names) == 0 {
		return ns == m.GetNamespace()
	}
	for _, n := range names {
		if n == ns {
			return true
		}
	}
	return false
}

// servicesOf are the Services a ServiceMonitor selects that select w's pods.
func (c *Cluster) servicesOf(m *unstructured.Unstructured, w Workload) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, s := range c.objs {
		if s.GetKind() != "Service" || s.GetNamespace() != w.Namespace || !c.monitorSelectsNamespace(m, s.GetNamespace()) {
			continue
		}
		if !selects(m, "selector", s.GetLabels()) {
			continue
		}
		sel, _, _ := unstructured.NestedStringMap(s.Object, "spec", "selector")
		if len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(w.Pod.Labels)) {
			out = append(out, s)
		}
	}
	return out
}

// servicePortOnPod is the pod port behind the Service port named name (0 if there is none).
func servicePortOnPod(svc *unstructured.Unstructured, name string, pod netpol.Pod) int32 {
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	for _, p := range ports {
		pm := p.(map[string]any)
		if pm["name"] != name {
			continue
		}
		switch tp := pm["targetPort"].(type) {
		case int64:
			return int32(tp)
		case string:
			return pod.NamedPorts[tp]
		}
		if n, ok := pm["port"].(int64); ok {
			return int32(n)
		}
	}
	return 0
}

// selects reads the label selector at spec.<field> of o and matches set against it. A missing
// (nil) selector selects nothing, as the operator reads its own selectors; an empty one
// everything.
func selects(o *unstructured.Unstructured, field string, set map[string]string) bool {
	raw, found, _ := unstructured.NestedMap(o.Object, "spec", field)
	if !found || raw == nil {
		return false
	}
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &ls); err != nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(set))
}

// Problems is every workload that no monitor scrapes, and every injected workload whose Envoy
// no monitor scrapes, with the reasons of the monitors that select it but cannot reach it, one
// line each.
func (c *Cluster) Problems() []string {
	var out []string
	for _, w := range c.Workloads() {
		targets, blocked := c.Targets(w)
		envoy := false
		for _, t := range targets {
			envoy = envoy || t.Port == InjectedPort
		}
		why := "no ServiceMonitor or PodMonitor that Prometheus selects selects its pods"
		if len(blocked) > 0 {
			why = strings.Join(blocked, "; ")
		}
		switch {
		case len(targets) == 0:
			out = append(out, fmt.Sprintf("%s is not scraped: %s", w, why))
		case w.Injected && !envoy:
			out = append(out, fmt.Sprintf("%s: its Envoy (the istio-agent's merged stats, %d) is not scraped: %s", w, InjectedPort, why))
		}
	}
	return out
}

// Unscraped are the ports of w (its container ports and the injected ones) that the
// NetworkPolicies let Prometheus reach although no monitor scrapes them: a policy that admits
// Prometheus to more than the metrics ports. Meaningful for pods that policies isolate; a pod no
// policy selects admits every port.
func (c *Cluster) Unscraped(w Workload) []int32 {
	targets, _ := c.Targets(w)
	scraped := map[int32]bool{}
	for _, t := range targets {
		scraped[t.Port] = true
	}
	var out []int32
	for p := range w.ports {
		if !scraped[p] && c.policies.Allowed(c.Prometheus, w.Pod, p) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
