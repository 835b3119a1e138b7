//go:build tools

// The real node's programs (docs/simulate.md, "The real node"), kept in this module's graph so
// that they compile together with the control plane (one build, shared packages): `make`
// builds kubelet, kube-proxy, containerd with its runc shim and ctr, the CNI plugins, and
// cmd/coredns and cmd/netpol from these versions.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "github.com/containernetworking/plugins/plugins/main/bridge"
	_ "github.com/containernetworking/plugins/plugins/main/loopback"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
