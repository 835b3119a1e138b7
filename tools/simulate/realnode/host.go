package realnode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Names of what the real node adds to the host; Sweep removes those a state file records
// (state.go), also when the run that recorded them was killed before it could clean up.
const (
	NodeIP      = "10.250.0.1"    // the node's address, a /32 on lo (this kernel has no dummy interface)
	PodCIDR     = "10.245.0.0/24" // real pods; KWOK's fake pod IPs are in 10.244.0.0/16 (never the same IP twice)
	ServiceCIDR = "10.96.0.0/16"  // the control plane's --service-cluster-ip-range
	DNSService  = "10.96.0.10"    // kube-dns, the kubelet's clusterDNS
	Bridge      = "clrn0"         // the CNI bridge
	CgroupRoot  = "cloudlab-realnode"
	GuardTable  = "cloudlab-realnode" // nft table (inet): pods' packets never leave the machine
	OutsideNS   = "cloudlab-outside"  // a network namespace: a host outside the cluster, on this machine
	OutsideLink = "clrn-out0"         // the host's end of the veth to it
	OutsideHost = "10.250.1.1"        // the host's address on that link (/30)
	OutsideIP   = "10.250.1.2"        // the outside host's address
	KNPTable    = "kube-network-policies"
	LockFile    = "/run/lock/cloudlab-realnode.lock"
)

// The host paths the package writes, variables only so that tests can point them at a
// temporary folder (a test must never touch the machine's real lock or kernel settings).
var (
	lockPath  = LockFile
	statePath = StateFile
	procSys   = "/proc/sys"
	cgroupFS  = "/sys/fs/cgroup"
)

// Packages the real node needs from the distribution (Debian names), by the command that shows
// they are there.
var needed = map[string]string{"runc": "runc", "iptables": "iptables", "iptables-restore": "iptables",
	"nft": "nftables", "conntrack": "conntrack", "ip": "iproute2"}

// Preflight says why a real node cannot run here ("" when it can): not Linux, not root, or a
// package missing, with the command that installs it.
func Preflight() string {
	if runtime.GOOS != "linux" {
		return "needs Linux (kubelet, containerd, netfilter), this is " + runtime.GOOS
	}
	if os.Geteuid() != 0 {
		return "needs root (mounts, cgroups, netfilter); run make simulate as root"
	}
	missing := map[string]bool{}
	for cmd, pkg := range needed {
		if _, err := exec.LookPath(cmd); err != nil {
			missing[pkg] = true
		}
	}
	if len(missing) > 0 {
		var pkgs []string
		for p := range missing {
			pkgs = append(pkgs, p)
		}
		sort.Strings(pkgs)
		return fmt.Sprintf("missing %s (install: apt-get install -y runc iptables nftables conntrack iproute2)", strings.Join(pkgs, ", "))
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
		if _, err2 := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err2 != nil {
			return "no cgroup memory controller mounted under /sys/fs/cgroup"
		}
	}
	// With a state file, the rules found may be ours (a run killed before its clean-up): Start
	// removes what it records, then looks again. While another run holds the lock, the rules
	// may be its own: Start looks once it has the lock.
	if _, err := os.Stat(statePath); err == nil || lockHeld() {
		return ""
	}
	return KubernetesNetworking()
}

// KubernetesNetworking says why a real node must not run beside the Kubernetes networking it
// finds on this machine ("" when there is none): iptables or ip6tables chains named KUBE-*
// (kube-proxy's, the kubelet's; either iptables backend) and the nftables tables of kube-proxy's
// nftables mode and of kube-network-policies. Called when no state file of ours records them,
// they are someone else's: a real node would share them (kube-proxy and the kubelet program the
// same chains), and its clean-up would remove them (kube-proxy --cleanup removes every KUBE-*
// chain, whoever made it).
func KubernetesNetworking() string {
	var chains []string
	for _, save := range []string{"iptables-save", "ip6tables-save", "iptables-legacy-save", "ip6tables-legacy-save"} {
		if _, err := exec.LookPath(save); err != nil {
			continue
		}
		out, _ := exec.Command(save).Output()
		for _, line := range strings.Split(string(out), "\n") {
			if rest, ok := strings.CutPrefix(line, ":KUBE-"); ok {
				if c := "KUBE-" + strings.Fields(rest + " ")[0]; !slices.Contains(chains, c) {
					chains = append(chains, c)
				}
			}
		}
	}
	var found []string
	if len(chains) > 0 {
		sort.Strings(chains)
		more := ""
		if len(chains) > 3 {
			chains, more = chains[:3], fmt.Sprintf(" and %d more", len(chains)-3)
		}
		found = append(found, "iptables chains "+strings.Join(chains, ", ")+more)
	}
	tables := Tables()
	for _, t := range []string{"inet " + KNPTable, "ip kube-proxy", "ip6 kube-proxy"} {
		if tables[t] {
			found = append(found, "nft table "+t)
		}
	}
	if len(found) == 0 {
		return ""
	}
	return fmt.Sprintf("this machine runs Kubernetes networking (%s) that no run of ours recorded in %s; "+
		"a real node here would share those rules and its clean-up would remove them", strings.Join(found, "; "), statePath)
}

// lockHeld says whether another run holds the real-node lock now.
func lockHeld() bool {
	f, err := os.OpenFile(lockPath, os.O_RDONLY, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// Lock takes the machine-wide real-node lock (one real node per machine: they share the node
// address, the bridge and the netfilter tables), waiting up to wait for another run to finish
// and saying once for whom it waits. Errors: the wait ran out (naming the holder), ctx ended
// (^C, SIGTERM: ctx's error), or the lock file cannot be opened or locked.
func Lock(ctx context.Context, wait time.Duration, say func(string, ...any)) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for said := false; ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		if time.Now().After(deadline) {
			holder, _ := os.ReadFile(lockPath)
			f.Close()
			return nil, fmt.Errorf("another real node holds %s (%s) after waiting %s", lockPath, strings.TrimSpace(string(holder)), wait)
		}
		if !said {
			holder, _ := os.ReadFile(lockPath)
			say("waiting for the real-node lock %s, held by %s", lockPath, strings.TrimSpace(string(holder)))
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d since %s\n", os.Getpid(), time.Now().Format(time.RFC3339))), 0)
	return f, nil
}

// Unlock releases the lock taken by Lock.
func Unlock(f *os.File) {
	if f != nil {
		_ = f.Truncate(0)
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}

// Sysctls the node's daemons change (kubelet's kernel tunables, the CNI bridge's forwarding,
// br_netfilter for policies between pods on one bridge): their original values are recorded in
// the state file before anything changes them, and restored by Sweep.
var sysctls = []string{
	"net/ipv4/ip_forward", "net/ipv4/conf/all/forwarding", "net/bridge/bridge-nf-call-iptables",
	"net/bridge/bridge-nf-call-ip6tables", "net/ipv4/conf/all/route_localnet",
	"kernel/panic", "kernel/panic_on_oops", "vm/overcommit_memory", "vm/panic_on_oom",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// saveSysctls records the current value of each sysctl above that st does not hold yet
// (missing ones are skipped) and writes the state file: a value once recorded is the original
// and is never replaced by a later, possibly already changed, one.
func (st *State) saveSysctls() error {
	if st.Sysctls == nil {
		st.Sysctls = map[string]string{}
	}
	for _, s := range sysctls {
		if _, ok := st.Sysctls[s]; ok {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(procSys, s)); err == nil {
			st.Sysctls[s] = strings.TrimSpace(string(b))
		}
	}
	return st.save()
}

// restoreSysctls writes back every recorded value that changed; it returns what it restored
// ("kernel.panic=0") and what it could not.
func restoreSysctls(saved map[string]string) (restored, problems []string) {
	for s, v := range saved {
		b, err := os.ReadFile(filepath.Join(procSys, s))
		if err != nil || strings.TrimSpace(string(b)) == v {
			continue
		}
		if err := os.WriteFile(filepath.Join(procSys, s), []byte(v), 0o644); err != nil {
			problems = append(problems, fmt.Sprintf("sysctl %s back to %s: %v", strings.ReplaceAll(s, "/", "."), v, err))
			continue
		}
		restored = append(restored, strings.ReplaceAll(s, "/", ".")+"="+v)
	}
	sort.Strings(restored)
	sort.Strings(problems)
	return restored, problems
}

func setSysctl(s, v string) error { return os.WriteFile(filepath.Join(procSys, s), []byte(v), 0o644) }

// cgroupDirs are <hierarchy>/cloudlab-realnode for every mounted cgroup hierarchy (v1
// controllers, the named systemd one, the v2 unified mount).
func cgroupDirs() []string {
	mounts, _ := filepath.Glob(filepath.Join(cgroupFS, "*"))
	var out []string
	for _, m := range mounts {
		if st, err := os.Stat(m); err == nil && st.IsDir() {
			out = append(out, filepath.Join(m, CgroupRoot))
		}
	}
	if _, err := os.Stat(filepath.Join(cgroupFS, "cgroup.controllers")); err == nil { // pure v2
		out = []string{filepath.Join(cgroupFS, CgroupRoot)}
	}
	return out
}

// MakeCgroupRoot creates the kubelet's cgroupRoot in every hierarchy (the kubelet refuses a
// missing one); cpuset needs its cpus and mems before a task can join.
func MakeCgroupRoot() error {
	for _, d := range cgroupDirs() {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if filepath.Base(filepath.Dir(d)) == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				if b, err := os.ReadFile(filepath.Join(filepath.Dir(d), f)); err == nil {
					_ = os.WriteFile(filepath.Join(d, f), b, 0o644)
				}
			}
		}
	}
	return nil
}

// killCgroups kills every process in the real node's cgroups (the pods' containers), then
// removes the cgroups, deepest first.
func killCgroups() []string {
	var problems []string
	for round := 0; round < 50; round++ {
		left := 0
		for _, root := range cgroupDirs() {
			_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
					return nil
				}
				b, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil {
						_ = syscall.Kill(pid, syscall.SIGKILL)
						left++
					}
				}
				return nil
			})
		}
		if left == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, root := range cgroupDirs() {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				problems = append(problems, "cgroup "+d+": "+err.Error())
			}
		}
	}
	return problems
}

// killStrays kills every process whose command line names the node's folder work (containerd,
// its shims, the kubelet... of this run or of a run that was killed).
func killStrays(work string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	self := os.Getpid()
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), work+"/") {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil && pid != self {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// unmountAll detaches every mount under the node's folder work (netns, shm, overlay roots,
// projected volumes), deepest first.
func unmountAll(work string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(strings.ReplaceAll(fields[4], `\040`, " "), work+"/") {
			points = append(points, strings.ReplaceAll(fields[4], `\040`, " "))
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var problems []string
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			problems = append(problems, "unmount "+p+": "+err.Error())
		}
	}
	return problems
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Sweep removes what st records that a real node added to the host (state.go), whether the run
// that recorded it is ending or was killed: its processes, mounts and cgroups, the bridge, its
// nft tables, kube-proxy's and the kubelet's chains, the outside host and the node address,
// and it restores the sysctls' recorded values (say, if not nil, is told which changed).
// Nothing st does not record is touched; a nil st removes nothing. Problems are returned, not
// fatal; with none, everything recorded is gone.
func Sweep(st *State, say func(string, ...any)) []string {
	if st == nil {
		return nil
	}
	var problems []string
	if st.has(addedProcesses) && !st.ownWork() {
		problems = append(problems, fmt.Sprintf("%s names %q as the node's folder, which is not a real node's: its processes and mounts were left alone", statePath, st.Work))
	}
	processes := st.has(addedProcesses) && st.ownWork()
	if processes {
		killStrays(st.Work)
	}
	if st.has(addedCgroups) {
		problems = append(problems, killCgroups()...)
	}
	if processes {
		killStrays(st.Work) // shims that were still starting
		problems = append(problems, unmountAll(st.Work)...)
	}
	if st.has(addedBridge) && exec.Command("ip", "link", "show", Bridge).Run() == nil {
		if err := run("ip", "link", "delete", Bridge); err != nil {
			problems = append(problems, err.Error())
		}
	}
	for _, t := range []struct{ added, table string }{{addedGuard, GuardTable}, {addedNetpol, KNPTable}} {
		if st.has(t.added) && exec.Command("nft", "list", "table", "inet", t.table).Run() == nil {
			if err := run("nft", "delete", "table", "inet", t.table); err != nil {
				problems = append(problems, err.Error())
			}
		}
	}
	if st.has(addedKubeRules) {
		if hasKubeChains() {
			// kube-proxy's own clean-up: its chains and jumps in iptables (and nftables, ipvs).
			if st.KubeProxy != "" {
				_ = exec.Command(st.KubeProxy, "--cleanup", "--v=0").Run()
			}
			removeKubeletCanaries()
		}
		before := map[string]bool{}
		for _, t := range st.TablesBefore {
			before[t] = true
		}
		RemoveEmptyTables(before)
		if left := KubernetesNetworking(); left != "" && hasKubeChains() {
			problems = append(problems, "KUBE-* chains remain after kube-proxy --cleanup: "+left)
		}
	}
	if st.has(addedOutside) && exec.Command("ip", "netns", "pids", OutsideNS).Run() == nil {
		if err := run("ip", "netns", "delete", OutsideNS); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if st.has(addedNodeIP) {
		if out, _ := exec.Command("ip", "-4", "addr", "show", "dev", "lo").Output(); strings.Contains(string(out), " "+NodeIP+"/32") {
			if err := run("ip", "addr", "del", NodeIP+"/32", "dev", "lo"); err != nil {
				problems = append(problems, err.Error())
			}
		}
	}
	restored, failed := restoreSysctls(st.Sysctls)
	if len(restored) > 0 && say != nil {
		say("real node: sysctls restored: %s", strings.Join(restored, " "))
	}
	return append(problems, failed...)
}

func hasKubeChains() bool {
	out, _ := exec.Command("iptables-save").Output()
	return strings.Contains(string(out), ":KUBE-")
}

// removeKubeletCanaries deletes the chains the kubelet and kube-proxy make outside kube-proxy's
// own clean-up (KUBE-FIREWALL, the canaries, the backend hint): every rule that jumps to one,
// then the chain, in iptables and ip6tables.
func removeKubeletCanaries() {
	chains := []string{"KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT", "KUBE-PROXY-CANARY"}
	for _, cmd := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle"} {
			out, err := exec.Command(cmd, "-t", table, "-S").Output()
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(out), "\n") {
				f := strings.Fields(line)
				if len(f) < 4 || f[0] != "-A" {
					continue
				}
				for i := 0; i+1 < len(f); i++ {
					if (f[i] == "-j" || f[i] == "-g") && slices.Contains(chains, f[i+1]) {
						_ = exec.Command(cmd, append([]string{"-t", table, "-D"}, f[1:]...)...).Run()
						break
					}
				}
			}
			for _, chain := range chains {
				if exec.Command(cmd, "-t", table, "-S", chain).Run() == nil {
					_ = exec.Command(cmd, "-t", table, "-F", chain).Run()
					_ = exec.Command(cmd, "-t", table, "-X", chain).Run()
				}
			}
		}
	}
}

// Tables lists the nftables tables on the host ("family name" each).
func Tables() map[string]bool {
	out, _ := exec.Command("nft", "list", "tables").Output()
	tables := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "table" {
			tables[f[1]+" "+f[2]] = true
		}
	}
	return tables
}

// RemoveEmptyTables deletes the iptables-nft tables (ip/ip6 filter, nat, mangle) that were not
// there before the node started and hold no rule now: iptables-restore made them for
// kube-proxy, and its --cleanup leaves them empty.
func RemoveEmptyTables(before map[string]bool) []string {
	var removed []string
	for t := range Tables() {
		f := strings.Fields(t)
		if before[t] || (f[0] != "ip" && f[0] != "ip6") || !slices.Contains([]string{"filter", "nat", "mangle"}, f[1]) {
			continue
		}
		out, err := exec.Command("nft", "-a", "list", "table", f[0], f[1]).Output()
		if err != nil || strings.Contains(string(out), "# handle") && hasRule(string(out)) {
			continue
		}
		if exec.Command("nft", "delete", "table", f[0], f[1]).Run() == nil {
			removed = append(removed, t)
		}
	}
	sort.Strings(removed)
	return removed
}

// hasRule says whether an `nft -a list table` output has a rule (a line inside a chain that is
// not the chain's type/policy line).
func hasRule(listing string) bool {
	for _, line := range strings.Split(listing, "\n") {
		l := strings.TrimSpace(line)
		if l == "" || strings.HasPrefix(l, "table ") || strings.HasPrefix(l, "chain ") || strings.HasPrefix(l, "type ") || l == "}" {
			continue
		}
		return true
	}
	return false
}

// AddNodeIP puts the node's address on lo: pods reach the API server and the node there.
func AddNodeIP() error { return run("ip", "addr", "add", NodeIP+"/32", "dev", "lo") }

// Guard installs an nft table that drops every packet from a pod that would leave the machine
// (forwarded out of any interface but the pods' bridge and the outside host's link): no test
// traffic reaches a network.
func Guard() error {
	rules := fmt.Sprintf(`table inet %s {
  chain forward {
    type filter hook forward priority -10; policy accept;
    ip saddr %s oifname != { %q, %q } drop
  }
}
`, GuardTable, PodCIDR, Bridge, OutsideLink)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft guard table: %v: %s", err, out)
	}
	return nil
}

// AddOutsideHost makes a host outside the cluster on this machine: a network namespace joined to
// the root one by a veth pair (OutsideHost <-> OutsideIP), with a route back to the pods, and a
// TCP listener in it. Pods reach it through the node (forwarded, so NetworkPolicies apply, as to
// any address outside the cluster); the listener proves that a drop is the policy's doing.
func AddOutsideHost() (net.Listener, error) {
	for _, args := range [][]string{
		{"netns", "add", OutsideNS},
		{"link", "add", OutsideLink, "type", "veth", "peer", "name", "eth0", "netns", OutsideNS},
		{"addr", "add", OutsideHost + "/30", "dev", OutsideLink},
		{"link", "set", OutsideLink, "up"},
		{"-n", OutsideNS, "addr", "add", OutsideIP + "/30", "dev", "eth0"},
		{"-n", OutsideNS, "link", "set", "eth0", "up"},
		{"-n", OutsideNS, "link", "set", "lo", "up"},
		{"-n", OutsideNS, "route", "add", "default", "via", OutsideHost},
	} {
		if err := run("ip", args...); err != nil {
			return nil, err
		}
	}
	return listenIn("/run/netns/"+OutsideNS, OutsideIP+":0")
}

// listenIn opens a TCP listener inside a network namespace (the socket stays there).
func listenIn(nsPath, addr string) (net.Listener, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err
	}
	defer self.Close()
	target, err := os.Open(nsPath)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("setns %s: %w", nsPath, err)
	}
	ln, lerr := net.Listen("tcp", addr)
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// This thread is in the wrong namespace: never give it back to the scheduler.
		runtime.Goexit()
	}
	return ln, lerr
}
