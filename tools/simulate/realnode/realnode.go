// Package realnode runs a real Kubernetes node next to the simulated ones of `make simulate`
// (docs/simulate.md, "The real node"): containerd with runc, the CNI bridge, kubelet,
// kube-proxy and a NetworkPolicy enforcer on this machine, with images built here. The
// launcher moves dev's services onto it and proves, with their real probes and with packets,
// that they start and that the NetworkPolicies allow exactly the catalog's calls.
//
// Everything it adds to the host is named in host.go, recorded in a state file before it is
// added (state.go) and removed by Sweep, on exit, on failure and on SIGINT/SIGTERM, or by the
// next run if this one was killed; nothing it did not record is removed. A machine-wide lock
// keeps two runs from sharing the host.
package realnode

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// TaintKey keeps every pod off the real node but those the launcher places there.
const TaintKey = "cloudlab.io/real-node"

// Config is what a real node needs from the launcher.
type Config struct {
	Tools      string // kubelet, kube-proxy, containerd, containerd-shim-runc-v2, ctr, coredns, netpol, cni/
	Podinfo    string // podinfo and its ui/ (built from its module at the tag dev deploys)
	ImageBins  string // probe and pause, built from this repository
	Images     string // where the image archives are kept (named by content hash)
	Work       string // the node's folder (state, configuration, logs): <run folder>/realnode
	Kubeconfig string // for the host daemons (kubelet, kube-proxy, the enforcer)
	APIPort    int    // the API server's port on 127.0.0.1, also served on NodeIP for pods
	NodeName   string
	Zone       string
	PodinfoRef string // the image reference dev's Deployments use
	Log        func(string, ...any)
	Config     *rest.Config
	Client     kubernetes.Interface
}

// Node is a running real node.
type Node struct {
	cfg     Config
	runc    string
	lock    *os.File
	state   *State // what this node added to the host, as its state file records it
	procs   []*exec.Cmd
	apiLn   net.Listener
	outLn   net.Listener
	images  Images
	mu      sync.Mutex
	stopped bool
	// OutsidePort is a TCP listener on OutsideIP: an address outside the cluster that the
	// services must not reach.
	OutsidePort int
	Timings     []string
}

func (n *Node) path(p ...string) string { return filepath.Join(append([]string{n.cfg.Work}, p...)...) }

// Socket is containerd's address.
func (n *Node) Socket() string { return n.path("containerd", "containerd.sock") }

// Images are the references of the images imported into containerd.
func (n *Node) Images() Images { return n.images }

func (n *Node) timing(what string, since time.Time) {
	n.Timings = append(n.Timings, fmt.Sprintf("%s %.1fs", what, time.Since(since).Seconds()))
	n.cfg.Log("real node: %s (%.1fs)", what, time.Since(since).Seconds())
}

// SkipError is why a real node must not run on this machine, found once Start held the lock
// (KubernetesNetworking); the launcher reports it as it reports Preflight's reasons.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return e.Reason }

// Start takes the lock, removes what a killed run of ours recorded, prepares the host and
// starts containerd, kubelet, kube-proxy and the enforcer, and waits until the node is Ready.
// Errors: a *SkipError when this machine runs Kubernetes networking of its own (nothing was
// changed); any other when a step failed, after everything started was removed again.
func Start(ctx context.Context, cfg Config) (n *Node, err error) {
	n = &Node{cfg: cfg}
	if n.runc, err = exec.LookPath("runc"); err != nil {
		return nil, err
	}
	if n.lock, err = Lock(ctx, 15*time.Minute, cfg.Log); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err = sweepEarlierRun(cfg.Log); err == nil {
		if reason := KubernetesNetworking(); reason != "" {
			err = &SkipError{reason}
		}
	}
	if err == nil {
		n.state, err = newState(statePath, cfg.Work, n.tool("kube-proxy"))
	}
	if err != nil {
		Unlock(n.lock)
		return nil, err
	}
	defer func() {
		if err != nil {
			n.Stop()
		}
	}()
	if err = n.prepareHost(); err != nil {
		return n, err
	}
	if n.images, err = BuildImages(cfg.ImageBins, cfg.Tools, cfg.Podinfo, cfg.PodinfoRef, cfg.Images); err != nil {
		return n, err
	}
	if err = n.writeConfigs(); err != nil {
		return n, err
	}
	n.timing("host prepared, images built", t0)

	t1 := time.Now()
	if err = n.startContainerd(ctx); err != nil {
		return n, err
	}
	n.timing("containerd up, images imported", t1)

	t2 := time.Now()
	if err = n.startKubelet(ctx); err != nil {
		return n, err
	}
	n.timing("kubelet, kube-proxy, enforcer started; node Ready", t2)
	return n, nil
}

// prepareHost changes the host as the node needs it, recording each change first (state) so a
// later run can undo it even if this one is killed: forwarding sysctls, the node address, the
// guard rules, the cgroup root, the API server on the node address and the outside host.
func (n *Node) prepareHost() (err error) {
	if err = os.MkdirAll(n.cfg.Work, 0o755); err != nil {
		return err
	}
	if err = n.state.saveSysctls(); err != nil {
		return err
	}
	for s, v := range map[string]string{"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"} {
		if err = setSysctl(s, v); err != nil {
			return fmt.Errorf("sysctl %s: %w", s, err)
		}
	}
	for _, step := range []struct {
		record string
		do     func() error
	}{{addedNodeIP, AddNodeIP}, {addedGuard, Guard}, {addedCgroups, MakeCgroupRoot}} {
		if err = n.state.record(step.record); err != nil {
			return err
		}
		if err = step.do(); err != nil {
			return err
		}
	}
	if n.apiLn, err = forward(NodeIP+":"+strconv.Itoa(n.cfg.APIPort), "127.0.0.1:"+strconv.Itoa(n.cfg.APIPort)); err != nil {
		return fmt.Errorf("API server on the node address: %w", err)
	}
	if err = n.state.record(addedOutside); err != nil {
		return err
	}
	if n.outLn, err = AddOutsideHost(); err != nil {
		return err
	}
	n.OutsidePort = n.outLn.Addr().(*net.TCPAddr).Port
	go acceptAndClose(n.outLn)
	return nil
}

// startContainerd starts containerd, waits until it answers and imports the images.
func (n *Node) startContainerd(ctx context.Context) error {
	if err := n.state.record(addedProcesses); err != nil {
		return err
	}
	if err := n.start("containerd", n.tool("containerd"), "--config", n.path("containerd.toml"), "--log-level", "warn"); err != nil {
		return err
	}
	if err := waitUntil(ctx, 30*time.Second, "containerd", func() bool {
		return exec.Command(n.tool("ctr"), "--address", n.Socket(), "version").Run() == nil
	}); err != nil {
		return err
	}
	return n.importImages(ctx)
}

// startKubelet starts the kubelet, kube-proxy and the NetworkPolicy enforcer and waits until
// the node is Ready and all of them still run.
func (n *Node) startKubelet(ctx context.Context) error {
	cfg := n.cfg
	if err := n.state.record(addedBridge, addedKubeRules, addedNetpol); err != nil {
		return err
	}
	if err := n.start("kubelet", n.tool("kubelet"), "--config", n.path("kubelet.yaml"), "--kubeconfig", cfg.Kubeconfig,
		"--root-dir", n.path("kubelet"), "--hostname-override", cfg.NodeName, "--node-ip", NodeIP,
		"--node-labels", fmt.Sprintf("%s=true,topology.kubernetes.io/zone=%s", TaintKey, cfg.Zone), "--v=1"); err != nil {
		return err
	}
	if err := n.start("kube-proxy", n.tool("kube-proxy"), "--config", n.path("kube-proxy.yaml"), "--v=1"); err != nil {
		return err
	}
	if err := n.start("netpol", n.tool("netpol"), "--kubeconfig", cfg.Kubeconfig, "--node-name", cfg.NodeName, "--v=1"); err != nil {
		return err
	}
	if err := waitUntil(ctx, 90*time.Second, "node "+cfg.NodeName+" Ready", func() bool {
		node, err := cfg.Client.CoreV1().Nodes().Get(ctx, cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	}); err != nil {
		return fmt.Errorf("%w (kubelet log: %s)", err, n.path("kubelet.log"))
	}
	return n.alive()
}

// alive fails if a daemon has exited, with the end of its log.
func (n *Node) alive() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.procs {
		if p.ProcessState != nil || (p.Process != nil && syscall.Kill(p.Process.Pid, 0) != nil) {
			name := filepath.Base(p.Path)
			b, _ := os.ReadFile(n.path(name + ".log"))
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) > 3 {
				lines = lines[len(lines)-3:]
			}
			return fmt.Errorf("%s exited: %s", name, strings.Join(lines, " | "))
		}
	}
	return nil
}

// NodeName is the node's name in the cluster.
func (n *Node) NodeName() string { return n.cfg.NodeName }

// Client is the cluster's client.
func (n *Node) Client() kubernetes.Interface { return n.cfg.Client }

// WaitDNS waits until CoreDNS is Ready.
func (n *Node) WaitDNS(ctx context.Context, timeout time.Duration) error {
	return waitUntil(ctx, timeout, "CoreDNS Ready", func() bool {
		d, err := n.cfg.Client.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 1
	})
}

// WaitProbes waits until every prober's probe container runs (a container of a probe pod or
// an ephemeral container of a service pod).
func (n *Node) WaitProbes(ctx context.Context, from map[string]Prober, timeout time.Duration) error {
	var waitingFor []string
	err := waitUntil(ctx, timeout, "probe containers running", func() bool {
		waitingFor = nil
		for id, p := range from {
			pod, err := n.cfg.Client.CoreV1().Pods(p.Namespace).Get(ctx, p.Pod, metav1.GetOptions{})
			running := false
			if err == nil {
				for _, cs := range append(pod.Status.ContainerStatuses, pod.Status.EphemeralContainerStatuses...) {
					if cs.Name == "probe" && cs.State.Running != nil {
						running = true
					}
				}
			}
			if !running {
				waitingFor = append(waitingFor, id)
			}
		}
		return len(waitingFor) == 0
	})
	if err != nil {
		return fmt.Errorf("%w: %v", err, waitingFor)
	}
	return nil
}

func (n *Node) tool(name string) string { return filepath.Join(n.cfg.Tools, name) }

// start runs a daemon in its own process group (a terminal's ^C reaches the launcher, which
// stops the node in order), killed with the launcher if that dies; its log is <name>.log.
func (n *Node) start(name, bin string, args ...string) error {
	logFile, err := os.Create(n.path(name + ".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	n.mu.Lock()
	n.procs = append(n.procs, cmd)
	n.mu.Unlock()
	go func() { _ = cmd.Wait(); logFile.Close() }()
	return nil
}

// Stop ends every daemon and container, removes everything the node added to the host and
// restores the sysctls (Sweep), deletes the state file when all of it is gone, and releases
// the lock. Safe to call twice.
func (n *Node) Stop() []string {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil
	}
	n.stopped = true
	procs := n.procs
	n.mu.Unlock()
	t := time.Now()
	for i := len(procs) - 1; i >= 0; i-- {
		if p := procs[i].Process; p != nil {
			_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
		}
	}
	for _, l := range []net.Listener{n.apiLn, n.outLn} {
		if l != nil {
			l.Close()
		}
	}
	problems := Sweep(n.state, n.cfg.Log)
	if n.state != nil {
		if len(problems) == 0 {
			if err := n.state.remove(); err != nil {
				problems = append(problems, err.Error())
			}
		} else {
			problems = append(problems, statePath+" kept: the next run removes what it records")
		}
	}
	Unlock(n.lock)
	n.cfg.Log("real node: stopped and cleaned up (%.1fs)", time.Since(t).Seconds())
	return problems
}

// sweepEarlierRun removes what a run of ours that was killed before its clean-up recorded in
// the state file (the lock is held: that run is gone), then deletes the file. Error: the file
// cannot be read, or not everything it records could be removed (the file is kept).
func sweepEarlierRun(say func(string, ...any)) error {
	prev, err := LoadState(statePath)
	if err != nil || prev == nil {
		return err
	}
	if problems := Sweep(prev, say); len(problems) > 0 {
		return fmt.Errorf("a real node of ours (pid %d) was killed before its clean-up, and not everything it recorded in %s could be removed: %s",
			prev.PID, statePath, strings.Join(problems, "; "))
	}
	say("real node: removed what an earlier run (pid %d, killed before its clean-up) recorded in %s: %s", prev.PID, statePath, strings.Join(prev.Added, ", "))
	return prev.remove()
}

// forward serves the API server on the node's address, so that pods reach it through the
// kubernetes Service while the API server itself listens on loopback only.
func forward(listen, to string) (net.Listener, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", to)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c) }()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
	return ln, nil
}

func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func waitUntil(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}
