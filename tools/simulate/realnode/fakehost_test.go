package realnode

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeCommand stands for every host command the package runs (ip, nft, iptables-save,
// kube-proxy...): it appends its command line to $FAKE_HOST/log and answers the queries from
// the files in $FAKE_HOST, which describe the host: kube-chains (what iptables-save prints),
// tables (what `nft list tables` prints). It changes nothing but those files: kube-proxy
// --cleanup empties kube-chains, `nft delete table` drops the table's line.
const fakeCommand = `#!/bin/sh
h="$FAKE_HOST"
echo "${0##*/} $*" >> "$h/log"
case "${0##*/} $*" in
"iptables-save "|"ip6tables-save ") [ -f "$h/kube-chains" ] && /bin/cat "$h/kube-chains" ;;
"nft list tables") [ -f "$h/tables" ] && /bin/cat "$h/tables" ;;
"nft list table "*) /bin/grep -qx "table $3 $4" "$h/tables" ;;
"nft delete table "*) /bin/grep -vx "table $3 $4" "$h/tables" > "$h/tables.new"; /bin/mv "$h/tables.new" "$h/tables" ;;
"kube-proxy --cleanup"*) : > "$h/kube-chains" ;;
"ip -4 addr show dev lo") echo "    inet 127.0.0.1/8 scope host lo"; echo "    inet 10.250.0.1/32 scope global lo" ;;
"iptables -t "*" -S "*|"ip6tables -t "*" -S "*) exit 1 ;;
esac
exit 0
`

// fakeHost makes PATH hold only fake host commands (no real one can run) and the package's
// host paths temporary (tempHost); chains and tables describe what the host already has.
// It returns the folder and a function that reads the commands run so far.
func fakeHost(t *testing.T, chains, tables string) (string, func() string) {
	t.Helper()
	dir := tempHost(t)
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ip", "nft", "iptables", "ip6tables", "iptables-save", "ip6tables-save", "iptables-restore", "runc", "conntrack", "kube-proxy"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(fakeCommand), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{"kube-chains": chains, "tables": tables} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
	t.Setenv("FAKE_HOST", dir)
	return dir, func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "log"))
		return string(b)
	}
}

// What a Kubernetes node (k3s, kubeadm, a self-hosted CI runner) has: kube-proxy's and the
// kubelet's chains, and kube-network-policies' table (kind's enforcer).
const (
	hostChains = "*filter\n:KUBE-FIREWALL - [0:0]\n:KUBE-FORWARD - [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\nCOMMIT\n"
	hostTables = "table ip filter\ntable ip nat\ntable inet kube-network-policies\n"
)

func mustNotRun(t *testing.T, log string, commands ...string) {
	t.Helper()
	for _, c := range commands {
		if strings.Contains(log, c) {
			t.Errorf("ran %q on a host whose rules no run of ours recorded; all commands:\n%s", c, log)
		}
	}
}

func mustRun(t *testing.T, log string, commands ...string) {
	t.Helper()
	for _, c := range commands {
		if !strings.Contains(log, c+"\n") {
			t.Errorf("did not run %q; all commands:\n%s", c, log)
		}
	}
}
