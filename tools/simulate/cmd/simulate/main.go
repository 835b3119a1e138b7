// Command simulate applies one environment, as rendered by `make render`, to a real Kubernetes
// control plane built here (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) with
// nodes simulated by KWOK in the environment's shape (clusters/<env>/simulation.yaml), and judges:
//
//   - every object is accepted (server-side apply, Pod Security and ResourceQuota admission on);
//   - everything schedules and every Deployment and StatefulSet becomes ready;
//   - capacity: requests against allocatable per node and in all;
//   - a rolling drain of every node through the Eviction API keeps every quorum's majority and
//     every service available;
//   - prod: losing a whole zone keeps every quorum and every service, and the rest reschedules.
//
// It prints a report, writes it with a picture (SVG) next to the rendered files, and exits 1 if
// any scenario fails. `make simulate CLUSTER=<env>` runs it; docs/simulate.md explains it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cloudlab/platform/tools/rendered"
	"github.com/cloudlab/platform/tools/simulate/realnode"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func main() {
	cluster := flag.String("cluster", "", "environment (clusters/<env>)")
	repo := flag.String("repo", ".", "repository root")
	rendered := flag.String("rendered", "", "rendered objects (default rendered/<env>)")
	binDir := flag.String("bin", "", "folder with kube-apiserver, kube-controller-manager, kube-scheduler")
	kwok := flag.String("kwok", "kwok", "kwok binary")
	istioctl := flag.String("istioctl", "istioctl", "istioctl binary (sidecar injection, as istiod's webhook does)")
	extra := flag.String("extra", "", "a YAML file of extra objects to apply last (tests: an oversized pod)")
	drains := flag.Bool("drains", true, "run the rolling drain of every node")
	readyTimeout := flag.Duration("ready-timeout", 3*time.Minute, "how long everything may take to become ready")
	realNode := flag.String("real-node", "", "folder of the real node's programs (kubelet, containerd...): run the services on a real node (docs/simulate.md)")
	podinfo := flag.String("podinfo", "", "folder with podinfo and its ui/ (real node)")
	imageBins := flag.String("image-bins", "", "folder with the probe and pause programs (real node)")
	imageCache := flag.String("image-cache", filepath.Join(os.TempDir(), "cloudlab-images"), "where the real node keeps its image archives")
	flag.Parse()
	if *cluster == "" || *binDir == "" {
		fmt.Fprintln(os.Stderr, "usage: simulate -cluster <env> -bin <dir> -kwok <path>")
		os.Exit(2)
	}
	if *rendered == "" {
		*rendered = filepath.Join(*repo, "rendered", *cluster)
	}
	r := &Run{Cluster: *cluster, Repo: *repo, Rendered: *rendered, Bin: *binDir, Kwok: *kwok, Istioctl: *istioctl, Extra: *extra, Drains: *drains, ReadyTimeout: *readyTimeout, start: time.Now(),
		RealNode: *realNode, Podinfo: *podinfo, ImageBins: *imageBins, ImageCache: *imageCache}
	// ^C or SIGTERM cancels the run; Main then stops everything it started (the real node's
	// processes, mounts, netfilter rules...) before the process exits.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ok, err := r.Main(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "simulate:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

// Run is one simulation of one environment.
type Run struct {
	Cluster, Repo, Rendered, Bin, Kwok, Istioctl, Extra string
	// The real node (empty RealNode: none): its programs, podinfo, the probe and pause programs.
	RealNode, Podinfo, ImageBins, ImageCache string
	podinfoRef                               string
	cp                                       *ControlPlane
	Drains                                   bool
	ReadyTimeout                             time.Duration
	// DrainTimeout bounds one node's drain (0: 3 minutes); tests shorten it.
	DrainTimeout time.Duration
	start        time.Time
	report       strings.Builder
	failed       bool
}

func (r *Run) log(format string, args ...any) {
	line := fmt.Sprintf("[%5.1fs] ", time.Since(r.start).Seconds()) + fmt.Sprintf(format, args...)
	fmt.Println(line)
}

func (r *Run) out(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	fmt.Println(line)
	r.report.WriteString(line + "\n")
}

func (r *Run) verdict(name string, problems []string) {
	if len(problems) == 0 {
		r.out("PASS %s", name)
		return
	}
	r.failed = true
	r.out("FAIL %s", name)
	for _, p := range problems {
		r.out("     - %s", p)
	}
}

// Main runs the simulation of r.Cluster: the control plane and the environment's nodes, every
// rendered Application applied wave by wave, then the scenarios (readiness and capacity, drains,
// prod's zone loss, dev's real node); it writes the report to rendered/<env>/simulation.{txt,svg}.
// It returns whether every verdict passed; an error means the simulation itself could not run.
func (r *Run) Main(ctx context.Context) (bool, error) {
	shape, err := loadShape(filepath.Join(r.Repo, "clusters", r.Cluster, "simulation.yaml"))
	if err != nil {
		return false, err
	}
	waves, err := LoadRendered(r.Rendered)
	if err != nil {
		return false, err
	}
	work, err := os.MkdirTemp("", "cloudlab-simulate-"+r.Cluster+"-")
	if err != nil {
		return false, err
	}
	defer func() {
		if !r.failed {
			os.RemoveAll(work)
		} else {
			fmt.Println("control plane logs kept in", work)
		}
	}()
	originals, err := r.prepareRealNode(waves)
	if err != nil {
		return false, err
	}
	advertise := ""
	if r.RealNode != "" {
		advertise = realnode.NodeIP
	}

	r.log("starting the control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) in %s", work)
	cp, err := StartControlPlane(ctx, work, r.Bin, r.Kwok, filepath.Join(r.Repo, "tools", "simulate", "kwok-stages.yaml"), advertise)
	if err != nil {
		return false, fmt.Errorf("%w (logs in %s)", err, work)
	}
	defer cp.Stop()
	r.cp = cp
	pctx, stopProvisioner := context.WithCancel(ctx)
	defer stopProvisioner()
	go Provision(pctx, cp)

	if err := CreateNodes(ctx, cp, shape); err != nil {
		return false, err
	}
	var pending *pendingNode
	if r.RealNode != "" {
		r.log("starting the real node in the background (logs in %s)", filepath.Join(work, "realnode"))
		pending = r.startRealNode(ctx, cp, shape.Nodes[0].Zone)
		defer func() {
			if problems := pending.stop(); len(problems) > 0 {
				r.out("     real node clean-up: %s", strings.Join(problems, "; "))
			}
		}()
	}
	applier := NewApplier(cp)
	if err := r.applyEnvironment(ctx, applier, shape, waves, work); err != nil {
		return false, err
	}

	if err := r.scenarios(ctx, shape); err != nil {
		return false, err
	}
	if pending != nil {
		r.finishRealNode(ctx, pending, applier, originals, waves, work)
	}
	r.out("== simulate %s: %s in %.0fs", r.Cluster, map[bool]string{true: "FAILED", false: "passed"}[r.failed], time.Since(r.start).Seconds())
	if err := os.WriteFile(filepath.Join(r.Rendered, "simulation.txt"), []byte(r.report.String()), 0o644); err != nil {
		return false, err
	}
	return !r.failed, nil
}

// scenarios waits until everything applied is ready (each scaled workload at its HPA's
// minReplicas: HPAs cannot compute utilisation here, there are no metrics), reports the
// capacity and draws it, then drains every node and, for prod, loses the worst zone.
func (r *Run) scenarios(ctx context.Context, shape *Shape) error {
	if err := scaleToHPAMinimum(ctx, r.cp); err != nil {
		return err
	}
	r.log("waiting for every Deployment and StatefulSet to be ready")
	snap, notReady, err := WaitReady(ctx, r.cp, r.ReadyTimeout)
	if err != nil {
		return err
	}
	r.verdict("everything schedules and every Deployment and StatefulSet is ready", notReady)
	r.capacity(snap, shape)
	if err := writePicture(filepath.Join(r.Rendered, "simulation.svg"), r.Cluster, snap.Use()); err != nil {
		return err
	}
	r.drainAll(ctx, shape, len(notReady) == 0)
	if r.Cluster == "prod" && len(notReady) == 0 {
		r.loseWorstZone(ctx, shape)
	}
	return nil
}

// prepareRealNode returns dev's services as rendered, before the simulation adds sidecars (what
// the real node runs), when r has a real node; it clears r.RealNode (one SKIP line) where this
// machine cannot run one, and checks that the podinfo program is the version the services name.
func (r *Run) prepareRealNode(waves []Wave) ([]*unstructured.Unstructured, error) {
	if r.RealNode == "" {
		return nil, nil
	}
	var originals []*unstructured.Unstructured
	for _, w := range waves {
		for _, o := range w.Objects {
			if o.GetKind() == "Deployment" && o.GetNamespace() == realNamespace {
				originals = append(originals, o.DeepCopy())
			}
		}
	}
	var err error
	if reason := realnode.Preflight(); reason != "" {
		r.skipRealNode(reason)
		r.RealNode = ""
	} else if r.podinfoRef, err = podinfoImage(originals); err != nil {
		return nil, err
	} else if err = checkPodinfoVersion(r.Podinfo, r.podinfoRef); err != nil {
		return nil, err
	}
	return originals, nil
}

// applyEnvironment applies what the environment runs: the operator's pods (with the Application
// that holds their objects), the storage classes it names, istiod's sidecar injected at
// admission, the cloud provider's node DaemonSets, then wave by wave each Application (its CRDs
// first, as Argo CD orders a sync) and r.Extra; one verdict on what the API server refused.
func (r *Run) applyEnvironment(ctx context.Context, applier *Applier, shape *Shape, waves []Wave, work string) error {
	var all []*unstructured.Unstructured
	for i, w := range waves {
		waves[i].Objects = append(w.Objects, OperatorPods(w.Objects)...)
		all = append(all, waves[i].Objects...)
	}
	r.log("%d nodes", len(shape.Nodes))
	if err := CreateStorageClasses(ctx, applier.cp, storageClasses(all)); err != nil {
		return err
	}
	injector, err := NewInjector(r.Istioctl, all)
	if err != nil {
		return err
	}
	if injector != nil {
		n, err := injector.Inject(ctx, work, all)
		if err != nil {
			return err
		}
		r.log("%d pod templates injected with istiod's sidecar (istioctl kube-inject)", n)
	}
	refused := NotInjected(all)
	for _, o := range NodeDaemons(shape) {
		if err := applier.Apply(ctx, o); err != nil {
			refused = append(refused, "node DaemonSet: "+err.Error())
		}
	}
	applied, crds, webhooks, errs := ApplyWaves(ctx, applier, waves, r.log)
	refused = append(refused, errs...)
	if r.Extra != "" {
		data, err := os.ReadFile(r.Extra)
		if err != nil {
			return err
		}
		extra, err := rendered.DecodeObjects(data)
		if err != nil {
			return err
		}
		for _, o := range extra {
			if err := applier.Apply(ctx, o); err != nil {
				refused = append(refused, "extra: "+err.Error())
			}
		}
	}
	r.out("== simulate %s: %d objects (%d CRDs) of %d Applications applied wave by wave; %d admission webhook configurations admitted as a dry run", r.Cluster, applied, crds, len(waves), webhooks)
	r.verdict("every object accepted by the API server (server-side apply, Pod Security, quotas)", refused)
	return nil
}

func (r *Run) drainTimeout() time.Duration {
	if r.DrainTimeout == 0 {
		return 3 * time.Minute
	}
	return r.DrainTimeout
}

// drainAll replaces every node in turn as a node-group rolling update does (ReplaceNode: a new
// node in the same zone first, then the old one drained through the Eviction API and removed),
// when r.Drains and everything was ready, waiting for everything to be ready again after each;
// a single node is skipped.
func (r *Run) drainAll(ctx context.Context, shape *Shape, allReady bool) {
	if r.Drains && len(shape.Nodes) == 1 {
		r.out("SKIP rolling drain: a single node cannot be drained without taking everything down (dev is one laptop node)")
		return
	}
	if !r.Drains || !allReady {
		return
	}
	var problems []string
	for _, node := range shape.Nodes {
		r.log("replacing %s", node.Name)
		next, p := ReplaceNode(ctx, r.cp, node, r.drainTimeout(), r.log)
		problems = append(problems, p...)
		if _, nr, _ := WaitReady(ctx, r.cp, 3*time.Minute); len(nr) > 0 {
			problems = append(problems, fmt.Sprintf("after replacing %s by %s, not ready: %s", node.Name, next, strings.Join(nr, "; ")))
		}
	}
	r.verdict(fmt.Sprintf("rolling drain of all %d nodes, each replaced by a new node in its zone first (a node-group update): PDBs respected, quorums and services kept", len(shape.Nodes)), dedupe(problems))
}

// loseWorstZone loses the zone of PostgreSQL's primary, the worst zone to lose for writes (its
// failover is manual; the first zone if there is none), and reports what keeps serving and
// which stores still take writes.
func (r *Run) loseWorstZone(ctx context.Context, shape *Shape) {
	before, _ := Snap(ctx, r.cp)
	zone := primaryZone(before, shape.Nodes[0].Zone)
	problems, pending := LoseZone(ctx, r.cp, zone, r.log)
	r.verdict(fmt.Sprintf("zone %s lost: quorums keep a majority, services keep serving, the rest reschedules", zone), problems)
	if len(pending) > 0 {
		r.out("     (waiting for their zone's volumes, as expected: %s)", strings.Join(pending, ", "))
	}
	if before != nil {
		lost := map[string]bool{}
		for _, n := range before.Nodes {
			lost[n.Name] = n.Labels[zoneLabel] == zone
		}
		r.out("     writes per store with zone %s lost:", zone)
		for _, line := range StoreWrites(ctx, r.cp, before, lost) {
			r.out("       %s", line)
		}
	}
	if after, err := Snap(ctx, r.cp); err == nil {
		r.capacity(after, nil)
	}
}

// finishRealNode waits for the real node started in the background and runs its checks
// against dev's services as rendered (originals) and everything applied.
func (r *Run) finishRealNode(ctx context.Context, pending *pendingNode, applier *Applier, originals []*unstructured.Unstructured, waves []Wave, work string) {
	res := pending.result()
	node := res.node
	var skip *realnode.SkipError
	switch {
	case errors.As(res.err, &skip):
		r.skipRealNode(skip.Reason)
	case res.err != nil:
		r.verdict("real node started (kubelet, containerd, kube-proxy, enforcer, CoreDNS)", []string{res.err.Error() + " (logs in " + filepath.Join(work, "realnode") + ")"})
	default:
		r.log("real node ready: %s", strings.Join(node.Timings, ", "))
		var all []*unstructured.Unstructured
		for _, w := range waves {
			all = append(all, w.Objects...)
		}
		if err := r.realNodeChecks(ctx, node, applier, originals, all); err != nil {
			r.verdict("real node checks ran", []string{err.Error()})
		}
		if r.failed {
			r.out("     real node logs (kubelet, containerd, kube-proxy, netpol) in %s", filepath.Join(work, "realnode"))
		}
	}
}

// skipRealNode reports why the real node cannot run here: one SKIP line, or a failure where
// CLOUDLAB_REQUIRE_REAL_NODE=1 (CI installs what the real node needs: .ci/run).
func (r *Run) skipRealNode(reason string) {
	if os.Getenv("CLOUDLAB_REQUIRE_REAL_NODE") == "1" {
		r.verdict("real node can run here (CLOUDLAB_REQUIRE_REAL_NODE=1)", []string{reason})
		return
	}
	r.out("SKIP real node: %s; the simulated part runs as usual", reason)
}

// capacity prints requests against allocatable per node and in all, with headroom.
func (r *Run) capacity(s *Snapshot, shape *Shape) {
	use := s.Use()
	r.out("%-12s %-16s %5s %22s %22s %9s", "node", "zone", "pods", "cpu requested/alloc", "memory requested/alloc", "headroom")
	var tc, tm, ac, am int64
	for _, u := range use {
		c, m := u.CPU.MilliValue(), u.Mem.Value()>>20
		a, b := u.AllocCPU.MilliValue(), u.AllocMem.Value()>>20
		tc, tm, ac, am = tc+c, tm+m, ac+a, am+b
		r.out("%-12s %-16s %5d %10dm /%8dm %10dMi /%8dMi %4.0f%%/%3.0f%%", u.Name, u.Zone, len(u.Pods), c, a, m, b, pct(a-c, a), pct(b-m, b))
	}
	r.out("%-12s %-16s %5s %10dm /%8dm %10dMi /%8dMi %4.0f%%/%3.0f%%", "total", "", "", tc, ac, tm, am, pct(ac-tc, ac), pct(am-tm, am))
	if shape != nil && shape.Budget != nil {
		var problems []string
		if bc := mustMilli(shape.Budget.CPU); tc > bc {
			problems = append(problems, fmt.Sprintf("requests %dm CPU exceed the budget %s", tc, shape.Budget.CPU))
		}
		if bm := mustMi(shape.Budget.Memory); tm > bm {
			problems = append(problems, fmt.Sprintf("requests %dMi exceed the budget %s", tm, shape.Budget.Memory))
		}
		r.verdict(fmt.Sprintf("all requests within the environment's budget (%s CPU / %s)", shape.Budget.CPU, shape.Budget.Memory), problems)
	}
}

func pct(free, total int64) float64 {
	if total == 0 {
		return 0
	}
	return 100 * float64(free) / float64(total)
}

func storageClasses(objs []*unstructured.Unstructured) []string {
	seen := map[string]bool{}
	for _, o := range objs {
		vcts, _, _ := unstructured.NestedSlice(o.Object, "spec", "volumeClaimTemplates")
		for _, v := range vcts {
			if sc, ok, _ := unstructured.NestedString(v.(map[string]any), "spec", "storageClassName"); ok {
				seen[sc] = true
			}
		}
		if o.GetKind() == "PersistentVolumeClaim" {
			if sc, ok, _ := unstructured.NestedString(o.Object, "spec", "storageClassName"); ok {
				seen[sc] = true
			}
		}
	}
	var out []string
	for sc := range seen {
		out = append(out, sc)
	}
	sort.Strings(out)
	return out
}
