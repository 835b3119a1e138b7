package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cloudlab/platform/tools/rendered"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"
)

// Shape is clusters/<env>/simulation.yaml: the nodes, what the cloud provider runs on each of
// them, and the budget. Everything else that runs is rendered from the repository.
type Shape struct {
	Nodes          []NodeShape                          `json:"nodes"`
	NodeDaemonSets []struct{ Name, CPU, Memory string } `json:"nodeDaemonSets"`
	Budget         *struct{ CPU, Memory string }        `json:"budget"`
}

// NodeShape is one node of the environment: its name, zone, capacity and allocatable (CPU and
// memory quantities, as a kubelet reports them).
type NodeShape struct {
	Name, Zone, CPU, Memory string
	Allocatable             struct{ CPU, Memory string } `json:"allocatable"`
}

const (
	provisioner   = "zonal-volume.simulate.cloudlab.io" // a CSI driver name: DNS-like, no slash
	standInLabel  = "simulate.cloudlab.io/stand-in"
	fieldManager  = "simulate"
	zoneLabel     = "topology.kubernetes.io/zone"
	hostnameLabel = "kubernetes.io/hostname"
)

// CreateNodes registers the environment's nodes; KWOK (annotation kwok.x-k8s.io/node=fake)
// keeps them Ready and runs their pods.
func CreateNodes(ctx context.Context, cp *ControlPlane, shape *Shape) error {
	return createNodes(ctx, cp, shape.Nodes)
}

// createNodes registers nodes and waits (up to a minute) until KWOK reports each Ready with its
// capacity.
func createNodes(ctx context.Context, cp *ControlPlane, nodes []NodeShape) error {
	want := map[string]corev1.NodeStatus{}
	for _, n := range nodes {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        n.Name,
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
				Labels: map[string]string{hostnameLabel: n.Name, zoneLabel: n.Zone, "kubernetes.io/os": "linux",
					"kubernetes.io/arch": "amd64", "type": "kwok"},
			},
		}
		if _, err := cp.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return err
		}
		want[n.Name] = corev1.NodeStatus{
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(n.CPU), corev1.ResourceMemory: resource.MustParse(n.Memory), corev1.ResourcePods: resource.MustParse("110")},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(n.Allocatable.CPU), corev1.ResourceMemory: resource.MustParse(n.Allocatable.Memory), corev1.ResourcePods: resource.MustParse("110")},
		}
	}
	// KWOK initialises a node it sees without a Ready condition, and fills an allocatable it
	// finds empty with 1k CPUs and 1 TiB: set ours until every node is Ready and keeps it (KWOK
	// never initialises a Ready node again).
	return waitFor(ctx, 60*time.Second, "nodes ready with their capacity", func() (bool, error) {
		done := 0
		for name, st := range want {
			node, err := cp.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			ready := false
			for _, c := range node.Status.Conditions {
				ready = ready || c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
			}
			same := node.Status.Allocatable.Cpu().Equal(*st.Allocatable.Cpu()) && node.Status.Allocatable.Memory().Equal(*st.Allocatable.Memory()) &&
				node.Status.Capacity.Cpu().Equal(*st.Capacity.Cpu())
			if ready && same {
				done++
				continue
			}
			if !same {
				node.Status.Capacity, node.Status.Allocatable = st.Capacity, st.Allocatable
				if _, err := cp.Client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
					return false, err
				}
			}
		}
		return done == len(want), nil
	})
}

// CreateStorageClasses makes every storage class the environment names, bound to the
// simulated provisioner with WaitForFirstConsumer, as EBS gp3 is.
func CreateStorageClasses(ctx context.Context, cp *ControlPlane, names []string) error {
	mode := storagev1.VolumeBindingWaitForFirstConsumer
	for _, name := range names {
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: provisioner, VolumeBindingMode: &mode}
		if _, err := cp.Client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// Provision plays the CSI provisioner: a PVC that the scheduler has placed (annotation
// volume.kubernetes.io/selected-node) gets a PersistentVolume pinned to that node's zone, like
// an EBS volume. A pod whose zone is lost can therefore not move to another zone.
func Provision(ctx context.Context, cp *ControlPlane) {
	for ctx.Err() == nil {
		pvcs, err := cp.Client.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, pvc := range pvcs.Items {
				nodeName := pvc.Annotations["volume.kubernetes.io/selected-node"]
				if pvc.Spec.VolumeName != "" || nodeName == "" {
					continue
				}
				node, err := cp.Client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
				if err != nil {
					continue
				}
				pv := &corev1.PersistentVolume{
					ObjectMeta: metav1.ObjectMeta{Name: "pv-" + string(pvc.UID),
						Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": provisioner}},
					Spec: corev1.PersistentVolumeSpec{
						Capacity:                      corev1.ResourceList{corev1.ResourceStorage: pvc.Spec.Resources.Requests[corev1.ResourceStorage]},
						AccessModes:                   pvc.Spec.AccessModes,
						PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
						StorageClassName:              derefString(pvc.Spec.StorageClassName),
						ClaimRef:                      &corev1.ObjectReference{Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID},
						PersistentVolumeSource:        corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: provisioner, VolumeHandle: string(pvc.UID)}},
						NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
							MatchExpressions: []corev1.NodeSelectorRequirement{{Key: zoneLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{node.Labels[zoneLabel]}}},
						}}}},
					},
				}
				if _, err := cp.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
					fmt.Fprintf(os.Stderr, "provisioner: %s/%s: %v\n", pvc.Namespace, pvc.Name, err)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Wave is one rendered Application (rendered/<env>/index.json names it and its sync wave;
// objects.json holds its objects): the format is tools/rendered, which the render writes.
type Wave = rendered.App

// LoadRendered reads what `make render` wrote, ordered as Argo CD syncs it: by sync wave, then
// name; the root (its Applications and AppProjects) last, once their namespace exists.
func LoadRendered(dir string) ([]Wave, error) { return rendered.SyncOrder(dir) }

// Applier applies objects with server-side apply, resolving kinds through discovery (refreshed
// after CRDs are installed).
type Applier struct {
	cp     *ControlPlane
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func NewApplier(cp *ControlPlane) *Applier {
	return &Applier{cp: cp, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cp.Client.Discovery()))}
}

// Apply server-side applies one object; the error says which object the API server refused.
func (a *Applier) Apply(ctx context.Context, o *unstructured.Unstructured) error {
	return a.apply(ctx, o, nil)
}

// Validate server-side applies one object as a dry run: the API server admits or refuses it,
// and stores nothing.
func (a *Applier) Validate(ctx context.Context, o *unstructured.Unstructured) error {
	return a.apply(ctx, o, []string{metav1.DryRunAll})
}

func (a *Applier) apply(ctx context.Context, o *unstructured.Unstructured, dryRun []string) error {
	gvk := o.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		a.mapper.Reset()
		if m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return fmt.Errorf("%s %s: %w", gvk.Kind, o.GetName(), err)
		}
	}
	data, err := o.MarshalJSON()
	if err != nil {
		return err
	}
	force := true
	ri := a.cp.Dynamic.Resource(m.Resource)
	if m.Scope.Name() == "namespace" {
		_, err = ri.Namespace(o.GetNamespace()).Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: fieldManager, Force: &force, DryRun: dryRun})
	} else {
		_, err = ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: fieldManager, Force: &force, DryRun: dryRun})
	}
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", gvk.Kind, o.GetNamespace(), o.GetName(), err)
	}
	return nil
}

// NodeDaemons are the per-node DaemonSets of the cloud provider that no Application of ours
// creates (clusters/<env>/simulation.yaml: kube-proxy, the provider's CNI and CSI node plugins),
// as pause containers with their requests in kube-system.
func NodeDaemons(shape *Shape) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, d := range shape.NodeDaemonSets {
		labels := map[string]any{"app.kubernetes.io/name": d.Name, standInLabel: "true"}
		out = append(out, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apps/v1", "kind": "DaemonSet",
			"metadata": map[string]any{"name": d.Name, "namespace": "kube-system", "labels": labels},
			"spec": map[string]any{
				"selector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": d.Name}},
				"template": map[string]any{
					"metadata": map[string]any{"labels": labels},
					"spec": map[string]any{
						"automountServiceAccountToken": false,
						"containers": []any{map[string]any{
							"name": d.Name, "image": "registry.k8s.io/pause:3.10",
							"resources": map[string]any{"requests": map[string]any{"cpu": d.CPU, "memory": d.Memory}},
						}},
					},
				},
			},
		}})
	}
	return out
}

func loadShape(path string) (*Shape, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := &Shape{}
	if err := yaml.UnmarshalStrict(data, s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
