package realnode

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// What a real node adds to the host is recorded in a state file next to the lock, each thing
// before it is added (a run killed half-way has recorded everything it may have left), and
// Sweep removes exactly what a state file records. A run killed before its clean-up (SIGKILL,
// the OOM killer, a CI timeout) leaves its state file; the next run, holding the lock, removes
// what it lists first. Nothing that no run of ours recorded is ever removed: on a machine that
// runs Kubernetes itself (k3s, kubeadm, a self-hosted CI runner), its kube-proxy chains, kubelet
// canaries and NetworkPolicy tables are its own, and a real node does not run beside them.

// StateFile is where a running (or killed) real node records what it added to the host.
const StateFile = "/run/lock/cloudlab-realnode.state"

// What a State records in Added, in the order a run adds them.
const (
	addedNodeIP    = "node-ip"          // NodeIP/32 on lo
	addedGuard     = "guard-table"      // nft table inet GuardTable
	addedCgroups   = "cgroups"          // the kubelet's cgroupRoot (CgroupRoot) in every hierarchy, and what runs in it
	addedOutside   = "outside-host"     // network namespace OutsideNS (its veth goes with it)
	addedProcesses = "processes"        // processes and mounts under the node's folder (State.Work)
	addedBridge    = "bridge"           // the CNI bridge Bridge (the bridge plugin makes it for the first pod)
	addedKubeRules = "kubernetes-rules" // kube-proxy's and the kubelet's KUBE-* chains, and the ip/ip6 tables iptables-nft made for them
	addedNetpol    = "netpol-table"     // nft table inet KNPTable (the enforcer's)
)

// State is what one real node added to the host, as its state file records it.
type State struct {
	PID          int               `json:"pid"`
	Work         string            `json:"work"`              // the node's folder (<run folder>/realnode): its processes and mounts
	KubeProxy    string            `json:"kubeProxy"`         // the kube-proxy that removes its own chains (--cleanup)
	TablesBefore []string          `json:"tablesBefore"`      // nft tables ("family name") before the node started
	Sysctls      map[string]string `json:"sysctls,omitempty"` // original values ("kernel/panic": "0"), recorded before any change
	Added        []string          `json:"added"`             // the added* names above
	path         string
}

// LoadState reads the state file at path: nil (and no error) when there is none. Error: the
// file cannot be read or parsed (then nothing is removed; the error names the file).
func LoadState(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st := &State{path: path}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("%s: %w (remove what it lists by hand, then the file)", path, err)
	}
	return st, nil
}

// newState starts the record of a new real node (nothing added yet) and writes it. Error: a
// state file is already there (its record, the original sysctls among it, is never replaced).
func newState(path, work, kubeProxy string) (*State, error) {
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("%s exists: an earlier real node's record, not yet swept", path)
	}
	st := &State{PID: os.Getpid(), Work: work, KubeProxy: kubeProxy, Added: []string{}, path: path}
	for t := range Tables() {
		st.TablesBefore = append(st.TablesBefore, t)
	}
	sort.Strings(st.TablesBefore)
	return st, st.save()
}

// record notes that the node is about to add these things and writes the file before it does.
func (st *State) record(what ...string) error {
	for _, w := range what {
		if !st.has(w) {
			st.Added = append(st.Added, w)
		}
	}
	return st.save()
}

func (st *State) has(what string) bool { return st != nil && slices.Contains(st.Added, what) }

// save writes the file whole (a temporary file renamed over it): a run killed while writing
// leaves the previous record, never half of one.
func (st *State) save() error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := st.path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("recording the real node's changes to the host: %w", err)
	}
	return os.Rename(tmp, st.path)
}

// remove deletes the state file once everything it records is gone.
func (st *State) remove() error {
	if err := os.Remove(st.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ownWork says whether the recorded folder is a real node's (<...>/cloudlab-simulate-*/realnode):
// the processes and mounts under it are swept, so a damaged record must not name "/" or $HOME.
func (st *State) ownWork() bool {
	return filepath.IsAbs(st.Work) && filepath.Base(st.Work) == "realnode" &&
		strings.HasPrefix(filepath.Base(filepath.Dir(st.Work)), "cloudlab-simulate-")
}
