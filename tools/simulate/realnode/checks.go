package realnode

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// ServicePods returns the running pod of each service of the catalog on the node (by the
// Deployment's name label), or why one is missing.
func (n *Node) ServicePods(ctx context.Context, cat *Catalog) (map[string]*corev1.Pod, error) {
	list, err := n.cfg.Client.CoreV1().Pods(cat.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	pods := map[string]*corev1.Pod{}
	for i := range list.Items {
		p := &list.Items[i]
		name := p.Labels["app.kubernetes.io/name"]
		if p.Spec.NodeName == n.cfg.NodeName && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && p.Labels[ProbeLabel] == "" {
			pods[name] = p
		}
	}
	for _, s := range cat.Services {
		if pods[s] == nil {
			return pods, fmt.Errorf("no running pod of %s on %s", s, n.cfg.NodeName)
		}
	}
	return pods, nil
}

// WaitServicesReady waits until every service has exactly one pod, Ready, on the real node and
// no other (the KWOK one is gone), and returns the restarts counted.
func (n *Node) WaitServicesReady(ctx context.Context, cat *Catalog, timeout time.Duration) (restarts int, problems []string) {
	var last []string
	err := waitUntil(ctx, timeout, "services Ready on the real node", func() bool {
		list, err := n.cfg.Client.CoreV1().Pods(cat.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		ready, others := map[string]int{}, map[string][]string{}
		restarts = 0
		for _, p := range list.Items {
			if p.Labels[ProbeLabel] != "" {
				continue
			}
			name := p.Labels["app.kubernetes.io/name"]
			if p.Spec.NodeName == n.cfg.NodeName && isReady(&p) && p.DeletionTimestamp == nil {
				ready[name]++
				for _, cs := range p.Status.ContainerStatuses {
					restarts += int(cs.RestartCount)
				}
			} else {
				others[name] = append(others[name], fmt.Sprintf("%s on %s (%s%s)", p.Name, p.Spec.NodeName, p.Status.Phase, waiting(&p)))
			}
		}
		last = nil
		for _, s := range cat.Services {
			if ready[s] != 1 || len(others[s]) > 0 {
				last = append(last, fmt.Sprintf("%s: %d Ready on %s; not yet: %s", s, ready[s], n.cfg.NodeName, strings.Join(others[s], ", ")))
			}
		}
		return len(last) == 0
	})
	if err != nil {
		return restarts, append([]string{err.Error()}, last...)
	}
	return restarts, nil
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func waiting(p *corev1.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Waiting != nil {
			return ", " + cs.State.Waiting.Reason + ": " + cs.State.Waiting.Message
		}
		if cs.LastTerminationState.Terminated != nil {
			t := cs.LastTerminationState.Terminated
			return fmt.Sprintf(", restarted %d times, last exit %d %s", cs.RestartCount, t.ExitCode, t.Reason)
		}
	}
	return ""
}

// RuntimeFacts reads, on the host, how each service's container process really runs (the
// runtime, not the manifest): its uid, effective capabilities, no_new_privs, seccomp mode and
// whether its root filesystem is mounted read-only. It returns one problem per deviation from
// what the chart's security context asks for.
func (n *Node) RuntimeFacts(pods map[string]*corev1.Pod) []string {
	var problems []string
	names := make([]string, 0, len(pods))
	for s := range pods {
		names = append(names, s)
	}
	sort.Strings(names)
	for _, s := range names {
		p := pods[s]
		if len(p.Status.ContainerStatuses) == 0 {
			problems = append(problems, s+": no container status")
			continue
		}
		id := strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://")
		pid, err := containerPID(id)
		if err != nil {
			problems = append(problems, s+": "+err.Error())
			continue
		}
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		field := func(name string) string {
			for _, l := range strings.Split(string(status), "\n") {
				if strings.HasPrefix(l, name+":") {
					return strings.Join(strings.Fields(strings.TrimPrefix(l, name+":")), " ")
				}
			}
			return "?"
		}
		if uid := field("Uid"); uid != "65532 65532 65532 65532" {
			problems = append(problems, fmt.Sprintf("%s: runs as uid %s, want 65532", s, uid))
		}
		for _, c := range []string{"CapEff", "CapPrm", "CapBnd"} {
			if v := field(c); v != "0000000000000000" {
				problems = append(problems, fmt.Sprintf("%s: %s %s, want none", s, c, v))
			}
		}
		if v := field("NoNewPrivs"); v != "1" {
			problems = append(problems, s+": no_new_privs not set")
		}
		if v := field("Seccomp"); v != "2" {
			problems = append(problems, s+": seccomp mode "+v+", want 2 (filter)")
		}
		mi, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		rootRO := false
		for _, l := range strings.Split(string(mi), "\n") {
			f := strings.Fields(l)
			if len(f) > 5 && f[4] == "/" {
				rootRO = strings.HasPrefix(f[5], "ro")
			}
		}
		if !rootRO {
			problems = append(problems, s+": root filesystem is writable")
		}
	}
	return problems
}

// containerPID finds a container's first process through its cgroup (cgroupfs driver:
// .../kubepods/<qos>/pod<uid>/<container id>, pids hierarchy).
func containerPID(containerID string) (int, error) {
	var found string
	root := filepath.Join("/sys/fs/cgroup/pids", CgroupRoot)
	if _, err := os.Stat(root); err != nil {
		root = filepath.Join("/sys/fs/cgroup", CgroupRoot)
	}
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == containerID {
			found = p
			return filepath.SkipAll
		}
		return nil
	})
	if found == "" {
		return 0, fmt.Errorf("no cgroup for container %s", containerID)
	}
	b, _ := os.ReadFile(filepath.Join(found, "cgroup.procs"))
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("cgroup %s has no process", found)
	}
	return strconv.Atoi(f[0])
}

// WaitEnforced waits until the enforcer has taken every given pod IP into its set of pods under
// a NetworkPolicy (nft set podips-v4 of its table): before that, a new pod's packets bypass it.
func WaitEnforced(ctx context.Context, ips []string, timeout time.Duration) error {
	var missing []string
	err := waitUntil(ctx, timeout, "the enforcer's pod set", func() bool {
		out, err := exec.Command("nft", "-j", "list", "set", "inet", KNPTable, "podips-v4").Output()
		if err != nil {
			return false
		}
		var doc struct {
			Nftables []map[string]json.RawMessage `json:"nftables"`
		}
		if json.Unmarshal(out, &doc) != nil {
			return false
		}
		have := map[string]bool{}
		for _, o := range doc.Nftables {
			if raw, ok := o["set"]; ok {
				var s struct {
					Elem []any `json:"elem"`
				}
				_ = json.Unmarshal(raw, &s)
				for _, e := range s.Elem {
					if str, ok := e.(string); ok {
						have[str] = true
					}
				}
			}
		}
		missing = nil
		for _, ip := range ips {
			if !have[ip] {
				missing = append(missing, ip)
			}
		}
		return len(missing) == 0
	})
	if err != nil {
		return fmt.Errorf("%w: missing %v", err, missing)
	}
	return nil
}

// WaitQuiet waits until the enforcer has not rewritten its rules for a while (its log, which at
// this verbosity records each sync, has not grown): every sync replaces its nft table, which
// drops the packets queued at that moment, so a probe's SYN could be lost to a sync rather
// than to a policy.
// The quiet time counts from the later of the log's last change and since (the launcher's last
// change to the cluster), so that a sync still on its way is waited for.
func (n *Node) WaitQuiet(ctx context.Context, since time.Time, quiet, timeout time.Duration) error {
	return waitUntil(ctx, timeout, "the enforcer to settle", func() bool {
		st, err := os.Stat(n.path("netpol.log"))
		return err == nil && time.Since(st.ModTime()) > quiet && time.Since(since) > quiet
	})
}

// Prober is where each identity's connections leave from: a pod and its probe container.
type Prober struct{ Namespace, Pod string }

// Matrix tries every expectation at once (one exec per identity, each trying its connections
// concurrently; the controls from the node itself, fromNode): an allowed connection is retried
// for up to 10s (a new pod's first packets may race the enforcer), a denied one gets one
// attempt of dropTimeout. It returns the outcome per
// Expectation.Key and the DNS answers per identity and name.
func (n *Node) Matrix(ctx context.Context, cat *Catalog, exp []Expectation, from map[string]Prober, dropTimeout time.Duration, dnsNames []string) (seen map[string]string, dns map[string]map[string][]string, err error) {
	byFrom := matrixTargets(cat, exp, from, dropTimeout, dnsNames)
	seen, dns = map[string]string{}, map[string]map[string][]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []string
	for id, targets := range byFrom {
		if id == NodeCaller { // the controls: from this process, on the node itself
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := fromNode(ctx, targets)
				mu.Lock()
				defer mu.Unlock()
				for key, r := range res {
					seen[key] = r.Outcome
				}
			}()
			continue
		}
		p, ok := from[id]
		if !ok {
			errs = append(errs, "no probe for "+id)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := n.Check(ctx, p.Namespace, p.Pod, targets)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err.Error())
				return
			}
			for key, r := range res {
				if name, ok := strings.CutPrefix(key, "dns "); ok {
					if dns[id] == nil {
						dns[id] = map[string][]string{}
					}
					if r.Outcome == "ok" {
						dns[id][name] = r.Addresses
					} else {
						dns[id][name] = []string{r.Outcome}
					}
					continue
				}
				seen[key] = r.Outcome
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		sort.Strings(errs)
		return seen, dns, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return seen, dns, nil
}

// matrixTargets is what each identity (a Prober's caller, or NodeCaller) must try: one Target
// per Expectation (keyed by Expectation.Key) and, for the services, a DNS lookup of each of
// dnsNames.
func matrixTargets(cat *Catalog, exp []Expectation, from map[string]Prober, dropTimeout time.Duration, dnsNames []string) map[string][]Target {
	byFrom := map[string][]Target{}
	for _, e := range exp {
		t := Target{ID: e.Key(), Kind: "http", Timeout: dropTimeout}
		host := e.To + "." + cat.Namespace + ".svc.cluster.local"
		switch {
		case e.To == Outside:
			t.Kind, t.Address = "tcp", OutsideIP+":"+strconv.Itoa(e.Port)
		case cat.IsMetrics(e):
			t.Address = fmt.Sprintf("http://%s:%d/metrics", host, e.Port)
		default:
			t.Address = fmt.Sprintf("http://%s:%d/healthz", host, e.Port)
		}
		if e.Connect {
			t.Timeout, t.RetryFor = 2*time.Second, 10*time.Second
		}
		byFrom[e.From] = append(byFrom[e.From], t)
	}
	for _, name := range dnsNames {
		for id := range from {
			if _, ok := cat.Calls[id]; ok { // services resolve short names through their search path
				byFrom[id] = append(byFrom[id], Target{ID: "dns " + name, Kind: "dns", Address: name, Timeout: 2 * time.Second, RetryFor: 5 * time.Second})
			}
		}
	}
	return byFrom
}

// fromNode makes connections from the node itself: from this process, as root, in the host's
// network namespace. Each target's name is resolved through the cluster's DNS Service
// (DNSService, CoreDNS), as a pod's would be, and requested on a new connection through the
// Service's address (kube-proxy's rules), retried until it succeeds or RetryFor has passed.
// NetworkPolicies never apply to a node's connections to its own pods (Kubernetes'
// NetworkPolicy documentation: pods cannot "block access from their resident node"; the
// enforcer accepts root's packets so that the kubelet's probes pass), so such a connection
// tests the name, the Service, its port and the pod's listener, and nothing else. Outcomes:
// "ok", "status <code>" or the error.
func fromNode(ctx context.Context, targets []Target) map[string]Result {
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(DNSService, "53"))
	}}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialContext: (&net.Dialer{Resolver: resolver}).DialContext}}
	attempt := func(t Target) string {
		actx, cancel := context.WithTimeout(ctx, t.Timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(actx, http.MethodGet, t.Address, nil)
		if err != nil {
			return "error: " + err.Error()
		}
		resp, err := client.Do(req)
		if err != nil {
			return "error: " + err.Error()
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Sprintf("status %d", resp.StatusCode)
		}
		return "ok"
	}
	results := map[string]Result{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start, r := time.Now(), Result{ID: t.ID}
			for {
				r.Attempts++
				if r.Outcome = attempt(t); r.Outcome == "ok" || time.Since(start)+300*time.Millisecond > t.RetryFor || ctx.Err() != nil {
					break
				}
				time.Sleep(300 * time.Millisecond)
			}
			r.Millis = time.Since(start).Milliseconds()
			mu.Lock()
			results[t.ID] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	return results
}

// Rollout restarts a Deployment (a new pod template, as `kubectl rollout restart` does) while
// the prober polls url through its Service every 100ms, and returns what the poll saw once
// the rollout is complete (new pod Ready, old pod gone) and how long it took.
func (n *Node) Rollout(ctx context.Context, ns, deployment string, poller Prober, url string) (PollResult, time.Duration, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return PollResult{}, 0, err
	}
	type out struct {
		b   []byte
		err error
	}
	done := make(chan out, 1)
	go func() {
		b, err := n.Exec(ctx, poller.Namespace, poller.Pod, "probe", pr, "/probe", "poll", url)
		done <- out{b, err}
	}()
	time.Sleep(time.Second) // the poll is running
	start := time.Now()
	c := n.cfg.Client
	old, err := c.AppsV1().Deployments(ns).Get(ctx, deployment, metav1.GetOptions{})
	if err != nil {
		pw.Close()
		return PollResult{}, 0, err
	}
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"cloudlab.io/restarted-at":%q}}}}}`, time.Now().Format(time.RFC3339Nano))
	if _, err := c.AppsV1().Deployments(ns).Patch(ctx, deployment, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		pw.Close()
		return PollResult{}, 0, err
	}
	sel := labels.SelectorFromSet(old.Spec.Selector.MatchLabels).String()
	werr := waitUntil(ctx, 90*time.Second, "rollout of "+deployment, func() bool {
		d, err := c.AppsV1().Deployments(ns).Get(ctx, deployment, metav1.GetOptions{})
		if err != nil || d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != *d.Spec.Replicas ||
			d.Status.ReadyReplicas != *d.Spec.Replicas || d.Status.Replicas != *d.Spec.Replicas {
			return false
		}
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		return err == nil && len(pods.Items) == int(*d.Spec.Replicas)
	})
	took := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	pw.Close()
	o := <-done
	pr.Close()
	if werr != nil {
		return PollResult{}, took, werr
	}
	if o.err != nil {
		return PollResult{}, took, o.err
	}
	var res PollResult
	if err := json.Unmarshal(o.b, &res); err != nil {
		return res, took, fmt.Errorf("poll printed %q: %w", o.b, err)
	}
	return res, took, nil
}
