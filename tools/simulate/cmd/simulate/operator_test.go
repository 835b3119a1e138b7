package main

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestOperatorPodsKeepVolumes: a Prometheus with spec.storage.volumeClaimTemplate becomes a
// StatefulSet that claims a volume per pod (as the operator's prometheus-<name>-db), so the
// simulation binds its pods to their volumes' zones; one without storage claims nothing.
func TestOperatorPodsKeepVolumes(t *testing.T) {
	withVolume := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
		"metadata": map[string]any{"name": "p", "namespace": "monitoring"},
		"spec": map[string]any{"replicas": int64(2), "storage": map[string]any{"volumeClaimTemplate": map[string]any{"spec": map[string]any{
			"storageClassName": "gp3", "resources": map[string]any{"requests": map[string]any{"storage": "20Gi"}}}}}},
	}}
	without := withVolume.DeepCopy()
	without.SetKind("Alertmanager")
	unstructured.RemoveNestedField(without.Object, "spec", "storage")
	got := OperatorPods([]*unstructured.Unstructured{withVolume, without})
	if len(got) != 2 {
		t.Fatalf("want 2 StatefulSets, got %d", len(got))
	}
	claims, _, _ := unstructured.NestedSlice(got[0].Object, "spec", "volumeClaimTemplates")
	if len(claims) != 1 {
		t.Fatalf("prometheus-p: want one volume claim template, got %v", claims)
	}
	name, _, _ := unstructured.NestedString(claims[0].(map[string]any), "metadata", "name")
	size, _, _ := unstructured.NestedString(claims[0].(map[string]any), "spec", "resources", "requests", "storage")
	if name != "prometheus-p-db" || size != "20Gi" {
		t.Errorf("prometheus-p: claim %s of %s, want prometheus-p-db of 20Gi", name, size)
	}
	if _, found, _ := unstructured.NestedSlice(got[1].Object, "spec", "volumeClaimTemplates"); found {
		t.Errorf("alertmanager-p has no storage: it must claim no volume")
	}
}
