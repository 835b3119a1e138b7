package main

import (
	"context"

	"fmt"
	"github.com/cloudlab/platform/tools/simulate/realnode"
	"os"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Snapshot is the cluster's state at one moment, as the scenarios judge it.
type Snapshot struct {
	Nodes        []corev1.Node
	Pods         []corev1.Pod
	Deployments  []appsv1.Deployment
	StatefulSets []appsv1.StatefulSet
	PDBs         []policyv1.PodDisruptionBudget
}

func Snap(ctx context.Context, cp *ControlPlane) (*Snapshot, error) {
	s := &Snapshot{}
	// ResourceVersion "0": from the API server's watch cache, not a quorum read of etcd (the
	// scenarios poll this every half second).
	cached := metav1.ListOptions{ResourceVersion: "0"}
	nodes, err := cp.Client.CoreV1().Nodes().List(ctx, cached)
	if err != nil {
		return nil, err
	}
	pods, err := cp.Client.CoreV1().Pods("").List(ctx, cached)
	if err != nil {
		return nil, err
	}
	deps, err := cp.Client.AppsV1().Deployments("").List(ctx, cached)
	if err != nil {
		return nil, err
	}
	sts, err := cp.Client.AppsV1().StatefulSets("").List(ctx, cached)
	if err != nil {
		return nil, err
	}
	pdbs, err := cp.Client.PolicyV1().PodDisruptionBudgets("").List(ctx, cached)
	if err != nil {
		return nil, err
	}
	s.Nodes, s.Pods, s.Deployments, s.StatefulSets, s.PDBs = nodes.Items, pods.Items, deps.Items, sts.Items, pdbs.Items
	s.withoutRealNode()
	return s, nil
}

// withoutRealNode leaves out the real node, its pods and its add-ons (CoreDNS): the scenarios
// judge the environment's shape, and the real node is not part of it (docs/simulate.md).
func (s *Snapshot) withoutRealNode() {
	real := map[string]bool{}
	nodes := s.Nodes[:0]
	for _, n := range s.Nodes {
		if n.Labels[realnode.TaintKey] == "true" {
			real[n.Name] = true
			continue
		}
		nodes = append(nodes, n)
	}
	s.Nodes = nodes
	pods := s.Pods[:0]
	for _, p := range s.Pods {
		if !real[p.Spec.NodeName] {
			pods = append(pods, p)
		}
	}
	s.Pods = pods
	deps := s.Deployments[:0]
	for _, d := range s.Deployments {
		if d.Labels[realnode.TaintKey] != "true" {
			deps = append(deps, d)
		}
	}
	s.Deployments = deps
}

func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// NotReady lists every Deployment and StatefulSet below its replica count.
func (s *Snapshot) NotReady() []string {
	var out []string
	for _, d := range s.Deployments {
		if want := replicasOf(d.Spec.Replicas); d.Status.ReadyReplicas < want {
			out = append(out, fmt.Sprintf("Deployment %s/%s: %d/%d ready", d.Namespace, d.Name, d.Status.ReadyReplicas, want))
		}
	}
	for _, st := range s.StatefulSets {
		if want := replicasOf(st.Spec.Replicas); st.Status.ReadyReplicas < want {
			out = append(out, fmt.Sprintf("StatefulSet %s/%s: %d/%d ready", st.Namespace, st.Name, st.Status.ReadyReplicas, want))
		}
	}
	sort.Strings(out)
	return out
}

// Quorums are the sets that must keep a majority ready: StatefulSets labelled
// cloudlab.io/quorum=true (Kafka controllers, Elasticsearch masters, Keeper) and the Redis
// Cluster (its masters elect failovers by majority).
func (s *Snapshot) Quorums() []appsv1.StatefulSet {
	var out []appsv1.StatefulSet
	for _, st := range s.StatefulSets {
		if replicasOf(st.Spec.Replicas) > 1 && (st.Labels["cloudlab.io/quorum"] == "true" || st.Labels["app.kubernetes.io/name"] == "redis") {
			out = append(out, st)
		}
	}
	return out
}

// Violations are the invariants that must hold at every moment of a drain or a zone loss.
func (s *Snapshot) Violations() []string {
	var out []string
	for _, q := range s.Quorums() {
		n := replicasOf(q.Spec.Replicas)
		if q.Status.ReadyReplicas < n/2+1 {
			out = append(out, fmt.Sprintf("quorum %s/%s has %d of %d ready: majority lost", q.Namespace, q.Name, q.Status.ReadyReplicas, n))
		}
	}
	for _, d := range s.Deployments {
		if d.Namespace == "cloudlab" && d.Status.ReadyReplicas < 1 {
			out = append(out, fmt.Sprintf("service %s has no ready replica", d.Name))
		}
	}
	for _, p := range s.PDBs {
		if p.Status.ObservedGeneration == p.Generation && p.Status.ExpectedPods > 0 && p.Status.CurrentHealthy < p.Status.DesiredHealthy-1 {
			// -1: the pod that was just evicted legitimately; two below means an eviction the
			// budget should have refused was granted.
			out = append(out, fmt.Sprintf("PDB %s/%s: %d healthy of %d desired", p.Namespace, p.Name, p.Status.CurrentHealthy, p.Status.DesiredHealthy))
		}
	}
	sort.Strings(out)
	return out
}

// requests is what a pod asks of its node, counted as the scheduler counts it
// (k8s.io/component-helpers/resource): its containers, its native sidecars (restartable init
// containers, such as istiod's istio-proxy), and the largest init container where that is more.
func requests(p *corev1.Pod) (cpu, mem resource.Quantity) {
	r := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})
	return r[corev1.ResourceCPU], r[corev1.ResourceMemory]
}

// NodeUse is one node's allocatable and what its pods request.
type NodeUse struct {
	Name, Zone                   string
	AllocCPU, AllocMem, CPU, Mem resource.Quantity
	Pods                         []corev1.Pod
}

func (s *Snapshot) Use() []NodeUse {
	var out []NodeUse
	for _, n := range s.Nodes {
		u := NodeUse{Name: n.Name, Zone: n.Labels[zoneLabel], AllocCPU: n.Status.Allocatable[corev1.ResourceCPU], AllocMem: n.Status.Allocatable[corev1.ResourceMemory]}
		for _, p := range s.Pods {
			if p.Spec.NodeName == n.Name && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				c, m := requests(&p)
				u.CPU.Add(c)
				u.Mem.Add(m)
				u.Pods = append(u.Pods, p)
			}
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Unschedulable explains every pod the scheduler could not place: its requests, the most free
// capacity any node has, and the shortfall.
func (s *Snapshot) Unschedulable() []string {
	use := s.Use()
	var out []string
	for _, p := range s.Pods {
		if p.Spec.NodeName != "" || p.Status.Phase != corev1.PodPending || p.DeletionTimestamp != nil {
			continue
		}
		cpu, mem := requests(&p)
		var bestCPU, bestMem resource.Quantity
		bestNode := "-"
		for _, u := range use {
			fc := u.AllocCPU.DeepCopy()
			fc.Sub(u.CPU)
			fm := u.AllocMem.DeepCopy()
			fm.Sub(u.Mem)
			if bestNode == "-" || fm.Cmp(bestMem) > 0 {
				bestNode, bestCPU, bestMem = u.Name, fc, fm
			}
		}
		short := []string{}
		if d := cpu.DeepCopy(); d.Cmp(bestCPU) > 0 {
			d.Sub(bestCPU)
			short = append(short, "cpu "+d.String())
		}
		if d := mem.DeepCopy(); d.Cmp(bestMem) > 0 {
			d.Sub(bestMem)
			short = append(short, "memory "+fmtMem(d))
		}
		why := "not by capacity: zone or anti-affinity constraints (see its volume's zone)"
		if len(short) > 0 {
			why = "shortfall " + strings.Join(short, ", ")
		}
		out = append(out, fmt.Sprintf("pod %s/%s requests cpu %s memory %s; the freest node %s has cpu %s memory %s free: %s",
			p.Namespace, p.Name, cpu.String(), fmtMem(mem), bestNode, bestCPU.String(), fmtMem(bestMem), why))
	}
	sort.Strings(out)
	return out
}

func fmtMem(q resource.Quantity) string {
	return fmt.Sprintf("%dMi", q.Value()/(1<<20))
}

// WaitReady waits until every Deployment and StatefulSet is ready; on timeout it returns what is
// not, with the scheduler's view of every pending pod.
func WaitReady(ctx context.Context, cp *ControlPlane, timeout time.Duration) (*Snapshot, []string, error) {
	var last *Snapshot
	err := waitFor(ctx, timeout, "ready", func() (bool, error) {
		s, err := Snap(ctx, cp)
		if err != nil {
			fmt.Fprintln(os.Stderr, "snapshot:", err)
			return false, nil
		}
		last = s
		return len(s.NotReady()) == 0, nil
	})
	if err != nil && last != nil {
		problems := append(last.NotReady(), last.Unschedulable()...)
		for _, p := range last.Pods {
			if p.Spec.NodeName != "" || p.Status.Phase != corev1.PodPending {
				continue
			}
			evs, _ := cp.Client.CoreV1().Events(p.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + p.Name})
			if evs != nil && len(evs.Items) > 0 {
				e := evs.Items[len(evs.Items)-1]
				problems = append(problems, fmt.Sprintf("pod %s/%s: %s: %s", p.Namespace, p.Name, e.Reason, e.Message))
			}
		}
		return last, problems, nil
	}
	return last, nil, err
}

// ReplaceNode replaces one node as a managed node group's rolling update does (Amazon EKS, the
// default surge strategy: docs.aws.amazon.com/eks/latest/userguide/managed-node-update-behavior.html;
// Karpenter's drift replacement does the same): a new node of the same shape joins in the same
// zone first, then the old node is cordoned and drained through the Eviction API (PDBs
// enforced), then terminated — deleted with the DaemonSet pods left on it. It returns the
// replacement's name (old.Name + "-new") and what went wrong, checked at every step.
func ReplaceNode(ctx context.Context, cp *ControlPlane, old NodeShape, timeout time.Duration, log func(string, ...any)) (string, []string) {
	next := old
	next.Name = old.Name + "-new"
	if err := createNodes(ctx, cp, []NodeShape{next}); err != nil {
		return next.Name, []string{fmt.Sprintf("replacement %s for %s did not join: %v", next.Name, old.Name, err)}
	}
	log("  %s joined in %s", next.Name, next.Zone)
	problems := Drain(ctx, cp, old.Name, timeout, log)
	terminate(ctx, cp, old.Name)
	return next.Name, problems
}

// Drain cordons a node and evicts its pods (but DaemonSets') through the Eviction API, which
// enforces PDBs, as `kubectl drain` does, checking the invariants after every step; the node
// stays cordoned. A pod whose eviction is still refused after timeout is a problem.
func Drain(ctx context.Context, cp *ControlPlane, node string, timeout time.Duration, log func(string, ...any)) (problems []string) {
	setUnschedulable(ctx, cp, node, true)
	start := time.Now()
	deadline, nextNote := start.Add(timeout), start.Add(30*time.Second)
	blocked := map[string]int{}
	for {
		s, err := Snap(ctx, cp)
		if err != nil {
			return []string{err.Error()}
		}
		problems = append(problems, s.Violations()...)
		left := 0
		for _, p := range s.Pods {
			if p.Spec.NodeName != node || p.DeletionTimestamp != nil || isDaemon(&p) {
				continue
			}
			left++
			ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}}
			err := cp.Client.PolicyV1().Evictions(p.Namespace).Evict(ctx, ev)
			if apierrors.IsTooManyRequests(err) {
				blocked[p.Namespace+"/"+p.Name]++
			}
		}
		if left == 0 {
			break
		}
		if now := time.Now(); now.After(nextNote) {
			// Progress for whoever watches a slow drain (the report only names what never left).
			nextNote = now.Add(30 * time.Second)
			log("  %s: %d pods left after %.0fs; evictions refused so far: %s", node, left, now.Sub(start).Seconds(), refusals(blocked))
		}
		if time.Now().After(deadline) {
			for pod, n := range blocked {
				problems = append(problems, fmt.Sprintf("drain of %s did not finish: eviction of %s refused %d times (its PDB, and no replacement could become ready)", node, pod, n))
			}
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	log("  drained %s", node)
	return dedupe(problems)
}

// terminate removes nodes as their instances' termination does (or a zone outage, once the node
// lifecycle controller gives up on them): every Node object first, so that nothing is placed on
// one of them meanwhile, then the pods still bound to them (a drained node's DaemonSet pods, a
// lost zone's everything), at once.
func terminate(ctx context.Context, cp *ControlPlane, nodes ...string) {
	for _, node := range nodes {
		_ = cp.Client.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{})
	}
	zero := int64(0)
	for _, node := range nodes {
		pods, err := cp.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
		if err != nil {
			continue
		}
		for _, p := range pods.Items {
			_ = cp.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		}
	}
}

// refusals is "namespace/pod ×count, ..." in name order, "none" when empty.
func refusals(blocked map[string]int) string {
	var out []string
	for pod, n := range blocked {
		out = append(out, fmt.Sprintf("%s ×%d", pod, n))
	}
	if len(out) == 0 {
		return "none"
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func isDaemon(p *corev1.Pod) bool {
	for _, o := range p.OwnerReferences {
		if o.Kind == "DaemonSet" {
			return true
		}
	}
	return false
}

func setUnschedulable(ctx context.Context, cp *ControlPlane, node string, v bool) {
	patch := fmt.Sprintf(`{"spec":{"unschedulable":%v}}`, v)
	_, _ = cp.Client.CoreV1().Nodes().Patch(ctx, node, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
}

// LoseZone deletes every node of a zone and their pods, as a zone outage does once the node
// lifecycle controller gives up on them, and checks that the quorums and the services survive.
func LoseZone(ctx context.Context, cp *ControlPlane, zone string, log func(string, ...any)) (problems []string, pending []string) {
	s, err := Snap(ctx, cp)
	if err != nil {
		return []string{err.Error()}, nil
	}
	var lost []string
	for _, n := range s.Nodes {
		if n.Labels[zoneLabel] == zone {
			lost = append(lost, n.Name)
		}
	}
	terminate(ctx, cp, lost...)
	log("  zone %s lost: %d nodes", zone, len(lost))
	time.Sleep(5 * time.Second)
	var last *Snapshot
	_ = waitFor(ctx, 2*time.Minute, "zone loss settles", func() (bool, error) {
		s, err := Snap(ctx, cp)
		if err != nil {
			return false, nil
		}
		last = s
		problems = append(problems, s.Violations()...)
		// Done when nothing is pending except pods whose volumes are in the lost zone.
		return len(zonePending(s, zone, false)) == 0 && deploymentsReady(s), nil
	})
	if last != nil {
		problems = append(problems, last.Violations()...)
		for _, p := range zonePending(last, zone, false) {
			problems = append(problems, "not rescheduled: "+p)
		}
		if !deploymentsReady(last) {
			for _, nr := range last.NotReady() {
				if strings.HasPrefix(nr, "Deployment") {
					problems = append(problems, "after the zone loss: "+nr)
				}
			}
		}
		pending = zonePending(last, zone, true)
	}
	return dedupe(problems), pending
}

func deploymentsReady(s *Snapshot) bool {
	for _, d := range s.Deployments {
		if d.Status.ReadyReplicas < replicasOf(d.Spec.Replicas) {
			return false
		}
	}
	return true
}

// zonePending lists pending pods; bound=true: StatefulSet pods, which are taken to be waiting for
// their volume in the lost zone (expected; the volume's zone is not checked, see docs/simulate.md),
// bound=false: every other pending pod (a failure).
func zonePending(s *Snapshot, zone string, bound bool) []string {
	var out []string
	for _, p := range s.Pods {
		if p.Spec.NodeName != "" || p.Status.Phase != corev1.PodPending || p.DeletionTimestamp != nil {
			continue
		}
		stateful := false
		for _, o := range p.OwnerReferences {
			if o.Kind == "StatefulSet" {
				stateful = true
			}
		}
		if stateful != bound {
			continue
		}
		out = append(out, p.Namespace+"/"+p.Name)
	}
	sort.Strings(out)
	return out
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
