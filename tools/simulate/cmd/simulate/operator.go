package main

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// OperatorPods are the StatefulSets the Prometheus Operator creates from the rendered
// Prometheus and Alertmanager objects (no operator runs here): per object, its replicas of a pod
// with the main container sized by the object's spec.resources and the config-reloader sidecar
// sized by the operator's --config-reloader-*-request flags (from the rendered operator
// Deployment), its securityContext, affinity and topology spread. They are what the scheduler
// must place for monitoring, with their persistent volume claims (spec.storage.volumeClaimTemplate)
// where the object has one; the rest of the generated pod (other volumes, arguments) does not
// matter to a simulation of placement.
func OperatorPods(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	reloader := map[string]any{}
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			args, _, _ := unstructured.NestedStringSlice(c.(map[string]any), "args")
			for _, a := range args {
				for flag, key := range map[string]string{"--config-reloader-cpu-request=": "cpu", "--config-reloader-memory-request=": "memory"} {
					if v, ok := strings.CutPrefix(a, flag); ok && v != "0" {
						reloader[key] = v
					}
				}
			}
		}
	}
	var out []*unstructured.Unstructured
	for _, o := range objs {
		var app string
		switch {
		case o.GetKind() == "Prometheus" && strings.HasPrefix(o.GetAPIVersion(), "monitoring.coreos.com/"):
			app = "prometheus"
		case o.GetKind() == "Alertmanager" && strings.HasPrefix(o.GetAPIVersion(), "monitoring.coreos.com/"):
			app = "alertmanager"
		default:
			continue
		}
		spec, _, _ := unstructured.NestedMap(o.Object, "spec")
		replicas, ok := spec["replicas"].(int64)
		if !ok {
			replicas = 1
		}
		labels := map[string]any{"app.kubernetes.io/name": app, "app.kubernetes.io/instance": o.GetName(),
			"app.kubernetes.io/managed-by": "prometheus-operator", app: o.GetName()}
		resources, _ := spec["resources"].(map[string]any)
		podSpec := map[string]any{
			"containers": []any{
				map[string]any{"name": app, "image": "registry.k8s.io/pause:3.10", "resources": resources},
				map[string]any{"name": "config-reloader", "image": "registry.k8s.io/pause:3.10", "resources": map[string]any{"requests": reloader}},
			},
		}
		for _, f := range []string{"securityContext", "affinity", "topologySpreadConstraints", "nodeSelector", "tolerations", "priorityClassName"} {
			if v, ok := spec[f]; ok {
				podSpec[f] = v
			}
		}
		sts := map[string]any{
			"replicas":    replicas,
			"serviceName": app + "-operated",
			"selector":    map[string]any{"matchLabels": labels},
			"template":    map[string]any{"metadata": map[string]any{"labels": labels}, "spec": podSpec},
		}
		// spec.storage.volumeClaimTemplate: the operator gives each pod a claim <app>-<name>-db,
		// so a pod is bound to its volume's zone like the data tier's.
		if vct, ok, _ := unstructured.NestedMap(spec, "storage", "volumeClaimTemplate"); ok {
			claim := map[string]any{"metadata": map[string]any{"name": app + "-" + o.GetName() + "-db"}, "spec": vct["spec"]}
			sts["volumeClaimTemplates"] = []any{claim}
		}
		out = append(out, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "StatefulSet",
			"metadata": map[string]any{"name": app + "-" + o.GetName(), "namespace": o.GetNamespace(), "labels": labels},
			"spec":     sts,
		}})
	}
	return out
}
