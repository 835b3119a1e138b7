package realnode

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// The daemons' configuration files, written into the node's folder. Each setting that differs
// from a stock node says why; docs/simulate.md lists them.

func (n *Node) writeConfigs() error {
	healthz, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	metrics, err := freeLoopbackPort()
	if err != nil {
		return err
	}
	files := map[string]string{
		"containerd.toml": n.containerdConfig(),
		filepath.Join("cni", "net.d", "10-cloudlab.conflist"): n.cniConfig(),
		"kubelet.yaml":    n.kubeletConfig(),
		"resolv.conf":     "# No upstream resolver: the real node's DNS answers cluster names only.\noptions ndots:1\n",
		"kube-proxy.yaml": n.kubeProxyConfig(healthz, metrics),
	}
	for name, content := range files {
		p := n.path(name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	for _, d := range []string{"pod-logs", "kubelet", filepath.Join("cni", "ipam")} {
		if err := os.MkdirAll(n.path(d), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// containerdConfig is containerd's config.toml: its folders and sockets in the node's folder,
// runc and the CNI plugins of the tool cache, the pause image pinned.
func (n *Node) containerdConfig() string {
	return fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs", "io.containerd.nri.v1.nri",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins]
  [plugins.'io.containerd.cri.v1.runtime']
    # W1: root lacks CAP_SYS_RESOURCE here; runc fails every sandbox unless containerd never
    # lowers a container's oom_score_adj below its own.
    restrict_oom_score_adj = true
    # The pods' network namespaces are mounted inside the node's folder (cleaned up with it).
    netns_mounts_under_state_dir = true
    enable_selinux = false
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = %[5]q
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = [%[6]q]
      conf_dir = %[7]q
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = %[8]q
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
`, n.path("containerd", "root"), n.path("containerd", "state"), n.Socket(), n.path("containerd", "ttrpc.sock"),
		n.runc, filepath.Join(n.cfg.Tools, "cni"), n.path("cni", "net.d"), n.images.Pause)
}

// cniConfig is the pods' network: one bridge, host-local addresses from PodCIDR.
func (n *Node) cniConfig() string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "cloudlab-realnode",
  "plugins": [{
    "type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}
  }]
}
`, Bridge, PodCIDR, n.path("cni", "ipam"))
}

// kubeletConfig is the kubelet's KubeletConfiguration.
func (n *Node) kubeletConfig() string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
readOnlyPort: 0
healthzPort: 0
# The API server reaches the kubelet (exec, logs) with no client certificate: this node is local
# and test-only.
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://%[2]s
cgroupDriver: cgroupfs
# The pods' cgroups under one root of ours (removed afterwards), in every hierarchy.
cgroupRoot: /%[3]s
# Kubernetes 1.35+ refuses cgroup v1 unless told; this machine's kernel mounts v1 controllers.
failCgroupV1: false
failSwapOn: false
# The kubelet rewrites kernel.panic, vm.overcommit_memory... instead of refusing to start; the
# launcher saves and restores them.
protectKernelDefaults: false
makeIPTablesUtilChains: false
clusterDNS: [%[4]s]
clusterDomain: cluster.local
resolvConf: %[5]q
registerWithTaints: [{key: %[6]s, value: "true", effect: NoSchedule}]
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
nodeStatusUpdateFrequency: 2s
syncFrequency: 10s
podLogsDir: %[7]q
`, NodeIP, n.Socket(), CgroupRoot, DNSService, n.path("resolv.conf"), TaintKey, n.path("pod-logs"))
}

// kubeProxyConfig is kube-proxy's KubeProxyConfiguration, its health and metrics on the given
// loopback ports.
func (n *Node) kubeProxyConfig(healthz, metrics int) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %[1]q}
hostnameOverride: %[2]s
mode: iptables
clusterCIDR: %[3]s
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:%[5]d
metricsBindAddress: 127.0.0.1:%[6]d
# NodePorts only on the node's own address, never on the machine's network interfaces.
nodePortAddresses: [%[4]s/32]
# Change no sysctl: no conntrack table sizing, no localhost NodePorts (route_localnet).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false, minSyncPeriod: 0s, syncPeriod: 30s}
`, n.cfg.Kubeconfig, n.cfg.NodeName, PodCIDR, NodeIP, healthz, metrics)
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
