package realnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// tempHost points the package's host paths (lock, state, /proc/sys) at a temporary folder for
// one test: a test never touches the machine's real lock or kernel settings.
func tempHost(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	oldLock, oldState, oldProc, oldCgroup := lockPath, statePath, procSys, cgroupFS
	lockPath, statePath = filepath.Join(dir, "cloudlab-realnode.lock"), filepath.Join(dir, "cloudlab-realnode.state")
	procSys, cgroupFS = filepath.Join(dir, "proc-sys"), filepath.Join(dir, "cgroup")
	t.Cleanup(func() { lockPath, statePath, procSys, cgroupFS = oldLock, oldState, oldProc, oldCgroup })
	return dir
}

// A second run waits for the lock, says for whom, and gives up as soon as its context ends
// (^C, SIGTERM), not after the 15 minutes it would otherwise wait.
func TestLockWaitsForItsHolderAndGivesUpWhenCancelled(t *testing.T) {
	tempHost(t)
	first, err := Lock(context.Background(), time.Minute, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var said []string
	start := time.Now()
	second, err := Lock(ctx, 15*time.Minute, func(f string, a ...any) { said = append(said, fmt.Sprintf(f, a...)) })
	if second != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock while held and cancelled: %v, %v; want the context's error", second, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Lock took %s to notice its context had ended", took)
	}
	if len(said) != 1 || !strings.Contains(said[0], fmt.Sprintf("held by pid %d", os.Getpid())) {
		t.Fatalf("Lock said %q, want once for whom it waits", said)
	}
	Unlock(first)
	third, err := Lock(context.Background(), time.Second, t.Logf)
	if err != nil {
		t.Fatalf("the lock is free again, yet: %v", err)
	}
	Unlock(third)
}

// On a machine that runs Kubernetes itself, the real node is skipped with one line saying why,
// and nothing is removed; rules a state file of ours records (a killed run's), or rules that
// appear while another run holds the lock, are left to Start, which looks again under the lock.
func TestPreflightSkipsAMachineThatRunsKubernetes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("Preflight asks for root before it looks at the host's rules")
	}
	dir, log := fakeHost(t, hostChains, hostTables)
	reason := Preflight()
	for _, want := range []string{"this machine runs Kubernetes networking", "KUBE-FIREWALL, KUBE-FORWARD, KUBE-NODEPORTS and 1 more", "nft table inet kube-network-policies", statePath} {
		if !strings.Contains(reason, want) {
			t.Errorf("Preflight: %q, want it to say %q", reason, want)
		}
	}
	mustNotRun(t, log(), "--cleanup", "delete", " -F ", " -X ", " -D ")

	if err := os.WriteFile(statePath, []byte(`{"added":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if reason := Preflight(); reason != "" {
		t.Errorf("with a state file of ours the rules may be a killed run's, which Start removes; Preflight said %q", reason)
	}
	os.Remove(statePath)
	holder, err := Lock(t.Context(), time.Second, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if reason := Preflight(); reason != "" {
		t.Errorf("while another run holds the lock the rules may be its own; Preflight said %q", reason)
	}
	Unlock(holder)

	for _, f := range []string{"kube-chains", "tables"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	if reason := Preflight(); reason != "" {
		t.Errorf("a machine without Kubernetes networking: %q", reason)
	}
}

// Sweep removes what a state records and nothing else: with no state, a host full of someone
// else's Kubernetes rules is left as it is.
func TestSweepRemovesOnlyWhatWasRecorded(t *testing.T) {
	dir, log := fakeHost(t, hostChains, hostTables+"table inet cloudlab-realnode\n")
	if p := Sweep(nil, t.Logf); len(p) > 0 || log() != "" {
		t.Fatalf("Sweep without a state: problems %v, commands:\n%s", p, log())
	}
	st, err := LoadState(statePath)
	if err != nil || st != nil {
		t.Fatalf("no state file: %v, %v", st, err)
	}

	// A run killed after adding the node address and its guard table.
	st = &State{Added: []string{addedNodeIP, addedGuard}, path: statePath}
	if p := Sweep(st, t.Logf); len(p) > 0 {
		t.Fatal(p)
	}
	mustRun(t, log(), "ip addr del 10.250.0.1/32 dev lo", "nft delete table inet cloudlab-realnode")
	mustNotRun(t, log(), "kube-proxy", "kube-network-policies", "link delete", "netns delete", "-X", "table ip filter")

	// A run killed with everything up: kube-proxy cleans its chains, the enforcer's table goes,
	// and the cgroups, bridge, outside host and the tables iptables-nft made for it.
	os.WriteFile(filepath.Join(dir, "log"), nil, 0o644)
	cg := filepath.Join(cgroupFS, "memory", CgroupRoot, "kubepods", "pod1")
	if err := os.MkdirAll(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	st = &State{Work: filepath.Join(dir, "cloudlab-simulate-dev-1", "realnode"), KubeProxy: filepath.Join(dir, "bin", "kube-proxy"),
		TablesBefore: []string{"ip filter"}, Added: []string{addedNodeIP, addedGuard, addedCgroups, addedOutside, addedProcesses, addedBridge, addedKubeRules, addedNetpol}, path: statePath}
	if p := Sweep(st, t.Logf); len(p) > 0 {
		t.Fatal(p)
	}
	mustRun(t, log(), "kube-proxy --cleanup --v=0", "nft delete table inet kube-network-policies", "ip link delete clrn0",
		"ip netns delete cloudlab-outside", "nft delete table ip nat")
	mustNotRun(t, log(), "nft delete table ip filter") // it was there before the node
	if _, err := os.Stat(filepath.Join(cgroupFS, "memory", CgroupRoot)); !os.IsNotExist(err) {
		t.Errorf("the node's cgroup root is still there: %v", err)
	}

	// A damaged record that names a folder that is not a real node's: its processes and mounts
	// are left alone, and the state says so.
	st = &State{Work: "/", Added: []string{addedProcesses}, path: statePath}
	if p := Sweep(st, t.Logf); len(p) != 1 || !strings.Contains(p[0], `names "/" as the node's folder`) {
		t.Fatalf("problems %q", p)
	}
}

// The next run removes what a killed run recorded, then deletes its state file; when something
// cannot be removed, it stops, names it, and keeps the file for the run after.
func TestNextRunSweepsAKilledRun(t *testing.T) {
	dir, log := fakeHost(t, "", "table inet cloudlab-realnode\n")
	killed := &State{PID: 4242, Added: []string{addedGuard}, path: statePath}
	if err := killed.save(); err != nil {
		t.Fatal(err)
	}
	var said []string
	if err := sweepEarlierRun(func(f string, a ...any) { said = append(said, fmt.Sprintf(f, a...)) }); err != nil {
		t.Fatal(err)
	}
	mustRun(t, log(), "nft delete table inet cloudlab-realnode")
	if _, err := os.Stat(statePath); !os.IsNotExist(err) {
		t.Fatalf("the state file is still there: %v", err)
	}
	if len(said) != 1 || !strings.Contains(said[0], "pid 4242") {
		t.Fatalf("said %q", said)
	}

	// nft fails to delete the table: the run stops and the record stays.
	os.WriteFile(filepath.Join(dir, "bin", "nft"), []byte("#!/bin/sh\n[ \"$1\" = delete ] && { echo 'Operation not permitted' >&2; exit 1; }\nexit 0\n"), 0o755)
	if err := killed.save(); err != nil {
		t.Fatal(err)
	}
	err := sweepEarlierRun(t.Logf)
	if err == nil || !strings.Contains(err.Error(), "nft delete table inet cloudlab-realnode") || !strings.Contains(err.Error(), "pid 4242") {
		t.Fatalf("err %v", err)
	}
	if st, _ := LoadState(statePath); st == nil {
		t.Fatal("the state file of what could not be removed was deleted")
	}
}

// The sysctls' original values are on disk before anything changes them: a run killed after
// the kubelet rewrote kernel.panic, vm.overcommit_memory... (SIGKILL, the OOM killer, a CI
// timeout) leaves them in its state file, the next run restores them, and a value once
// recorded is never replaced by an already changed one.
func TestSysctlsOfAKilledRunAreRestored(t *testing.T) {
	fakeHost(t, "", "")
	write := func(values map[string]string) {
		for s, v := range values {
			os.MkdirAll(filepath.Dir(filepath.Join(procSys, s)), 0o755)
			if err := os.WriteFile(filepath.Join(procSys, s), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	original := map[string]string{"kernel/panic": "0", "kernel/panic_on_oops": "0", "vm/overcommit_memory": "0", "net/ipv4/ip_forward": "0"}
	changed := map[string]string{"kernel/panic": "10", "kernel/panic_on_oops": "1", "vm/overcommit_memory": "1", "net/ipv4/ip_forward": "1"}
	write(original)
	st, err := newState(statePath, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.saveSysctls(); err != nil {
		t.Fatal(err)
	}
	write(changed) // the launcher and the kubelet at work; then the launcher is killed

	onDisk, err := LoadState(statePath)
	if err != nil || onDisk == nil || !reflect.DeepEqual(onDisk.Sysctls, original) {
		t.Fatalf("state file after the kill: %+v, %v; want the original sysctls %v", onDisk, err, original)
	}
	if err := onDisk.saveSysctls(); err != nil || !reflect.DeepEqual(onDisk.Sysctls, original) {
		t.Fatalf("saving again replaced originals with changed values: %v, %v", onDisk.Sysctls, err)
	}
	if _, err := newState(statePath, "", ""); err == nil {
		t.Fatal("a new run replaced the record of a killed one")
	}

	if err := sweepEarlierRun(t.Logf); err != nil {
		t.Fatal(err)
	}
	for s, v := range original {
		if b, _ := os.ReadFile(filepath.Join(procSys, s)); strings.TrimSpace(string(b)) != v {
			t.Errorf("%s is %q after the next run's sweep, want %s", s, strings.TrimSpace(string(b)), v)
		}
	}
}
