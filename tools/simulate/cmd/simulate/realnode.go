package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cloudlab/platform/tools/rendered"
	"github.com/cloudlab/platform/tools/simulate/realnode"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// The real node's part of a run (docs/simulate.md, "The real node"): it starts while the
// simulated part applies and judges, then dev's services move onto it and the five checks run.

const realNamespace = "cloudlab"

// dropTimeout is how long a connection the catalog denies gets to answer: more than one SYN
// retransmission (1s), so that a SYN lost for another reason does not pass for a drop.
const dropTimeout = 2500 * time.Millisecond

type nodeResult struct {
	node *realnode.Node
	err  error
}

// pendingNode is the real node starting in the background. Its one result is received once
// and remembered: the run reads it for the checks, and its clean-up reads it again, also when
// the start failed without a node (another run's lock, no runc) or the run ended early.
type pendingNode struct {
	ch     <-chan nodeResult
	cancel context.CancelFunc // ends a start still under way (waiting for the lock, starting)
	res    *nodeResult
}

// result waits for the start to finish (the first time) and returns its result.
func (p *pendingNode) result() nodeResult {
	if p.res == nil {
		res := <-p.ch
		p.res = &res
	}
	return *p.res
}

// stop cancels a start still under way, waits for it, stops the node if there is one and
// returns the clean-up's problems.
func (p *pendingNode) stop() []string {
	if p.cancel != nil {
		p.cancel()
	}
	if n := p.result().node; n != nil {
		return n.Stop()
	}
	return nil
}

// startRealNode begins the real node in the background (host, containerd, images, kubelet,
// kube-proxy, enforcer, CoreDNS).
func (r *Run) startRealNode(ctx context.Context, cp *ControlPlane, zone string) *pendingNode {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan nodeResult, 1)
	go func() {
		cfg := realnode.Config{
			Tools: r.RealNode, Podinfo: r.Podinfo, ImageBins: r.ImageBins, Images: r.ImageCache,
			Work: filepath.Join(cp.dir, "realnode"), Kubeconfig: cp.Kubeconfig, APIPort: cp.APIPort,
			NodeName: r.Cluster + "-real", Zone: zone, PodinfoRef: r.podinfoRef,
			Log: r.log, Config: cp.Config, Client: cp.Client,
		}
		n, err := realnode.Start(ctx, cfg)
		if err == nil {
			err = n.DeployDNS(ctx)
		}
		ch <- nodeResult{n, err}
	}()
	return &pendingNode{ch: ch, cancel: cancel}
}

// podinfoImage is the one image dev's services run (the stand-in of the services' own images);
// the real node builds podinfo with exactly this reference.
func podinfoImage(deployments []*unstructured.Unstructured) (string, error) {
	seen := map[string]bool{}
	for _, d := range deployments {
		cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		for _, c := range cs {
			seen[c.(map[string]any)["image"].(string)] = true
		}
	}
	if len(seen) != 1 {
		return "", fmt.Errorf("the real node runs dev's services on one image (podinfo), but they use %v", keys(seen))
	}
	img := keys(seen)[0]
	if !strings.Contains(img, "/podinfo:") {
		return "", fmt.Errorf("dev's services run %s; the real node only builds podinfo", img)
	}
	return img, nil
}

// checkPodinfoVersion refuses to give the podinfo that was built a reference with another tag:
// `podinfo --version` must print the tag dev deploys.
func checkPodinfoVersion(dir, ref string) error {
	out, err := exec.Command(filepath.Join(dir, "podinfo"), "--version").Output()
	if err != nil {
		return fmt.Errorf("podinfo in %s: %w", dir, err)
	}
	built, tag := strings.TrimSpace(string(out)), ref[strings.LastIndex(ref, ":")+1:]
	if built != tag {
		return fmt.Errorf("dev deploys %s, but the real node's podinfo is %s: require the commit tagged %s of github.com/stefanprodan/podinfo in tools/simulate/go.mod", ref, built, tag)
	}
	return nil
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// realNodeChecks moves dev's services onto the real node and runs the checks, each a verdict:
// ready by their probes; DNS; packets against the catalog; a rolling update keeps serving; the
// packet check fails on an undeclared call (fixture).
func (r *Run) realNodeChecks(ctx context.Context, n *realnode.Node, applier *Applier, originals, all []*unstructured.Unstructured) error {
	cat, err := realnode.LoadCatalog(r.Repo, realNamespace)
	if err != nil {
		return err
	}
	exp := cat.Expectations(n.OutsidePort)
	secrets, err := n.CreateSecrets(ctx, all, realNamespace)
	if err != nil {
		return err
	}
	r.out("     the harness created the Secrets External Secrets would (generated values): %s", strings.Join(secrets, ", "))

	// 1. Ready by their own probes.
	pods, ok, err := r.servicesReady(ctx, n, applier, cat, originals)
	if err != nil || !ok {
		return err
	}
	// The probes: an ephemeral container in each service pod, pods for the gateway and Prometheus.
	from, ok := r.probesSettled(ctx, n, cat, pods)
	if !ok {
		return nil
	}
	// 2 and 3. DNS and packets, in one go.
	start := time.Now()
	seen, dns, err := n.Matrix(ctx, cat, exp, from, dropTimeout, cat.Services)
	took := time.Since(start)
	if err != nil {
		return err
	}
	r.verdict(fmt.Sprintf("real node: DNS: the %d Service names resolve to their ClusterIPs from every service pod (%d lookups through CoreDNS and the allow-dns-egress policy)",
		len(cat.Services), len(cat.Services)*len(cat.Services)), r.judgeDNS(ctx, cat, dns))
	problems := realnode.Judge(exp, seen)
	connected, dropped, timeouts := cat.Tally(exp, seen)
	r.verdict(fmt.Sprintf("real node: packets match the catalog: %d of %d service pairs connect, %d dropped (%d silently: every denied connection must time out); the gateway reaches exactly the %d public services; "+
		"metrics only from Prometheus; outside the cluster dropped; %s (%d connections in %.1fs)",
		connected, connected+dropped, dropped, timeouts, publicCount(cat), controls(exp), len(exp), took.Seconds()), problems)

	r.out("     not exercised by packets: the mesh (no Envoy here: sidecars, mTLS, AuthorizationPolicies) and the data tier (stays on the simulated node)")

	// 4. A rolling update keeps the service serving.
	r.rolloutKeepsServing(ctx, n, cat, from)

	// 5. The packet check can fail: a policy that opens an undeclared call.
	return r.fixtureCheck(ctx, n, applier, cat, exp)
}

// servicesReady pins dev's services (as rendered) to the real node, applies them and waits until
// they are Ready by their own probes, with the runtime facts read on the host; one verdict. It
// returns their pods and whether the later checks can run; an error if one was refused.
func (r *Run) servicesReady(ctx context.Context, n *realnode.Node, applier *Applier, cat *realnode.Catalog, originals []*unstructured.Unstructured) (map[string]*corev1.Pod, bool, error) {
	start := time.Now()
	for _, d := range originals {
		realnode.Pin(d, n.NodeName())
		if err := applier.Apply(ctx, d); err != nil {
			return nil, false, err
		}
	}
	restarts, problems := n.WaitServicesReady(ctx, cat, 3*time.Minute)
	took := time.Since(start)
	pods, err := n.ServicePods(ctx, cat)
	if err != nil && len(problems) == 0 {
		problems = append(problems, err.Error())
	}
	if len(problems) == 0 {
		problems = n.RuntimeFacts(pods)
	}
	r.verdict(fmt.Sprintf("real node: %d services Ready by their own startup, liveness and readiness probes under Pod Security restricted, "+
		"running as uid 65532 with no capabilities, no_new_privs, seccomp and a read-only root (read on the host): %.0fs from apply to all Ready, %d restarts",
		len(cat.Services), took.Seconds(), restarts), problems)
	return pods, len(problems) == 0, nil
}

// probesSettled starts the probes and waits until the NetworkPolicy enforcer has taken up the
// pods, CoreDNS is Ready and the enforcer is quiet; a failure is a verdict, and false.
func (r *Run) probesSettled(ctx context.Context, n *realnode.Node, cat *realnode.Catalog, pods map[string]*corev1.Pod) (map[string]realnode.Prober, bool) {
	from, problems := r.probes(ctx, n, cat, pods)
	if len(problems) > 0 {
		r.verdict("real node: probes started", problems)
		return nil, false
	}
	var ips []string
	for _, p := range pods {
		ips = append(ips, p.Status.PodIP)
	}
	if err := realnode.WaitEnforced(ctx, ips, 30*time.Second); err != nil {
		r.verdict("real node: the NetworkPolicy enforcer took up the pods", []string{err.Error()})
		return nil, false
	}
	if err := n.WaitDNS(ctx, time.Minute); err != nil {
		r.verdict("real node: CoreDNS Ready", []string{err.Error()})
		return nil, false
	}
	if err := n.WaitQuiet(ctx, time.Now(), 1500*time.Millisecond, 20*time.Second); err != nil {
		r.verdict("real node: the NetworkPolicy enforcer settled", []string{err.Error()})
		return nil, false
	}
	return from, true
}

// rolloutKeepsServing rolls one service (rolloutPair) while its caller keeps asking it; one
// verdict.
func (r *Run) rolloutKeepsServing(ctx context.Context, n *realnode.Node, cat *realnode.Catalog, from map[string]realnode.Prober) {
	target, caller := rolloutPair(cat)
	res, took, err := n.Rollout(ctx, realNamespace, target, from[caller], fmt.Sprintf("http://%s:%d/healthz", target, cat.Ports[target].HTTP))
	var problems []string
	if err != nil {
		problems = append(problems, err.Error())
	} else if res.Failures > 0 || res.Requests < 10 {
		problems = append(problems, fmt.Sprintf("%d of %d requests failed: %s", res.Failures, res.Requests, strings.Join(res.Errors, "; ")))
	}
	r.verdict(fmt.Sprintf("real node: rolling update of %s (maxUnavailable 0, maxSurge 1, preStop sleep; dev runs 1 replica and so renders no PDB) kept it serving: %d of %d requests from %s failed over %.1fs (slowest %.1fs)",
		target, res.Failures, res.Requests, caller, took.Seconds(), float64(res.SlowestMillis)/1000), problems)
}

// controls says, for the report, which ports only the node's controls reach.
func controls(exp []realnode.Expectation) string {
	switch c := realnode.Controls(exp); len(c) {
	case 0:
		return "every port has a caller that must connect"
	case 1:
		return "control: " + c[0] + ", which no caller may reach, answers the node itself"
	default:
		return "controls: " + strings.Join(c, ", ") + ", which no caller may reach, answer the node itself"
	}
}

func publicCount(cat *realnode.Catalog) int {
	n := 0
	for _, s := range cat.Services {
		if cat.Public[s] {
			n++
		}
	}
	return n
}

// rolloutPair picks the service with the most callers among services (ties: the first by name)
// and its first caller, which polls it through its Service during the rollout.
func rolloutPair(cat *realnode.Catalog) (target, caller string) {
	callers := map[string][]string{}
	for _, from := range cat.Services {
		for _, to := range cat.Calls[from] {
			callers[to] = append(callers[to], from)
		}
	}
	best := 0
	for _, s := range cat.Services {
		if c := callers[s]; len(c) > best {
			sort.Strings(c)
			best, target, caller = len(c), s, c[0]
		}
	}
	return
}

// probes starts the probe containers: one ephemeral container in every service pod (the caller
// itself: its labels, ServiceAccount and address), and probe pods for the ingress gateway, for
// Prometheus and for an unlabelled pod in Prometheus' namespace. It checks that no Service
// selects a probe pod.
func (r *Run) probes(ctx context.Context, n *realnode.Node, cat *realnode.Catalog, pods map[string]*corev1.Pod) (map[string]realnode.Prober, []string) {
	from := map[string]realnode.Prober{}
	var problems []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	fail := func(err error) {
		mu.Lock()
		problems = append(problems, err.Error())
		mu.Unlock()
	}
	for s, p := range pods {
		from[s] = realnode.Prober{Namespace: p.Namespace, Pod: p.Name}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.AddProbe(ctx, p); err != nil {
				fail(err)
			}
		}()
	}
	extra := map[string]realnode.Identity{realnode.Gateway: cat.Gateway, "prometheus": cat.Prom, realnode.Unlabelled: {Namespace: cat.Prom.Namespace}}
	for id, ident := range extra {
		name := "probe-" + id
		from[id] = realnode.Prober{Namespace: ident.Namespace, Pod: name}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.ProbePod(ctx, ident.Namespace, name, ident.Labels); err != nil {
				fail(err)
				return
			}
			svcs, err := n.Client().CoreV1().Services(ident.Namespace).List(ctx, metav1.ListOptions{})
			if err != nil {
				fail(err)
				return
			}
			for _, svc := range svcs.Items {
				if len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(ident.Labels)) {
					fail(fmt.Errorf("probe %s/%s would join Service %s's endpoints (its selector matches %v)", ident.Namespace, name, svc.Name, ident.Labels))
				}
			}
		}()
	}
	wg.Wait()
	if len(problems) > 0 {
		return from, problems
	}
	if err := n.WaitProbes(ctx, from, 60*time.Second); err != nil {
		problems = append(problems, err.Error())
	}
	return from, problems
}

// judgeDNS checks that every service pod resolved every Service name to its ClusterIP.
func (r *Run) judgeDNS(ctx context.Context, cat *realnode.Catalog, dns map[string]map[string][]string) []string {
	svcs, err := r.cp.Client.CoreV1().Services(cat.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return []string{err.Error()}
	}
	ip := map[string]string{}
	for _, s := range svcs.Items {
		ip[s.Name] = s.Spec.ClusterIP
	}
	var problems []string
	for _, from := range cat.Services {
		for _, name := range cat.Services {
			got := dns[from][name]
			if len(got) != 1 || got[0] != ip[name] {
				problems = append(problems, fmt.Sprintf("%s resolved %s to %v, want its ClusterIP %s", from, name, got, ip[name]))
			}
		}
	}
	return problems
}

// fixtureCheck applies a NetworkPolicy that opens a call the catalog does not have
// (testdata/undeclared-call.yaml, annotation cloudlab.io/opens names it), probes the matrix
// again, and passes only if the packet check then fails naming exactly that call.
func (r *Run) fixtureCheck(ctx context.Context, n *realnode.Node, applier *Applier, cat *realnode.Catalog, exp []realnode.Expectation) error {
	file := filepath.Join(r.Repo, "tools", "simulate", "cmd", "simulate", "testdata", "undeclared-call.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	objs, err := rendered.DecodeObjects(data)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, o := range objs {
		if k := o.GetAnnotations()["cloudlab.io/opens"]; k != "" {
			want[k] = true
		}
		if err := applier.Apply(ctx, o); err != nil {
			return err
		}
	}
	from, problems, err := r.fixtureEnforced(ctx, n, cat, exp, want)
	if err != nil {
		return err
	}
	var reported []string
	if len(problems) == 0 {
		seen, _, err := n.Matrix(ctx, cat, exp, from, dropTimeout, nil)
		if err != nil {
			return err
		}
		reported = realnode.Judge(exp, seen)
		problems = fixtureReported(want, reported)
	}
	for _, o := range objs {
		_ = n.Client().NetworkingV1().NetworkPolicies(o.GetNamespace()).Delete(ctx, o.GetName(), metav1.DeleteOptions{})
	}
	r.verdict(fmt.Sprintf("real node: the packet check fails on an undeclared call: with %s applied it reports %s",
		"testdata/undeclared-call.yaml", strings.Join(reported, "; ")), problems)
	return nil
}

// fixtureEnforced starts probes in the current pods (the rollout replaced one), waits until the
// enforcer has taken up the fixture (each call in want connects), then until it is quiet: only
// then may everything be probed. It returns the probes and what kept it from settling.
func (r *Run) fixtureEnforced(ctx context.Context, n *realnode.Node, cat *realnode.Catalog, exp []realnode.Expectation, want map[string]bool) (map[string]realnode.Prober, []string, error) {
	pods, err := n.ServicePods(ctx, cat)
	if err != nil {
		return nil, nil, err
	}
	from, problems := r.probes(ctx, n, cat, pods)
	var ips []string
	for _, p := range pods {
		ips = append(ips, p.Status.PodIP)
	}
	if len(problems) == 0 {
		if err := realnode.WaitEnforced(ctx, ips, 30*time.Second); err != nil {
			problems = append(problems, err.Error())
		}
	}
	for k := range want {
		if len(problems) > 0 {
			break
		}
		var e realnode.Expectation
		for _, x := range exp {
			if x.Key() == k {
				e = x
			}
		}
		p := from[e.From]
		res, err := n.Check(ctx, p.Namespace, p.Pod, []realnode.Target{{ID: k, Kind: "http", Timeout: 2 * time.Second, RetryFor: 20 * time.Second,
			Address: fmt.Sprintf("http://%s.%s.svc.cluster.local:%d/healthz", e.To, cat.Namespace, e.Port)}})
		if err != nil {
			problems = append(problems, err.Error())
		} else if res[k].Outcome != "ok" {
			problems = append(problems, fmt.Sprintf("the fixture's %s never connected (%s): the enforcer did not apply it", k, res[k].Outcome))
		}
	}
	if len(problems) == 0 {
		if err := n.WaitQuiet(ctx, time.Now(), 1500*time.Millisecond, 20*time.Second); err != nil {
			problems = append(problems, err.Error())
		}
	}
	return from, problems, nil
}

// fixtureReported compares the calls the packet check reported (the key before ": " of each
// line) with the calls the fixture opens: each must be reported, nothing else.
func fixtureReported(want map[string]bool, reported []string) []string {
	var problems []string
	got := map[string]bool{}
	for _, p := range reported {
		got[strings.SplitN(p, ": ", 2)[0]] = true
	}
	for k := range want {
		if !got[k] {
			problems = append(problems, "the packet check did not report "+k+", which the fixture opens")
		}
	}
	for k := range got {
		if !want[k] {
			problems = append(problems, "the packet check reported "+k+", which the fixture does not open")
		}
	}
	return problems
}
