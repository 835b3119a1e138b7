// Command netpol is the real node's NetworkPolicy enforcer: kube-network-policies (the agent
// kind ships) run from its library, pkg/networkpolicy, with a kubeconfig instead of the
// in-cluster configuration of its DaemonSet, and NRI off (containerd runs without it here).
//
// It is built with the patched google/nftables queue expression of
// tools/simulate/patches/nftables (docs/decisions/0020-real-node.md): this machine's kernel has
// no CONFIG_NFT_QUEUE, on which the unpatched agent installs nothing and enforces nothing.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/kube-network-policies/pkg/networkpolicy"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster")
	node := flag.String("node-name", "", "the node whose pods' traffic is enforced")
	klog.InitFlags(nil)
	flag.Parse()
	if *kubeconfig == "" || *node == "" {
		fmt.Fprintln(os.Stderr, "usage: netpol -kubeconfig <file> -node-name <node>")
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		klog.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := networkpolicy.NewController(client,
		factory.Networking().V1().NetworkPolicies(), factory.Core().V1().Namespaces(), factory.Core().V1().Pods(),
		nil, nil, nil, nil,
		networkpolicy.Config{
			QueueID: 100, NodeName: *node, NRIdisabled: true,
			// The conntrack race it works around is fixed in kernels 6.12+ (this one is newer).
			NetfilterBug1766Fix: false,
		})
	if err != nil {
		klog.Fatal(err)
	}
	factory.Start(ctx.Done())
	if err := ctrl.Run(ctx); err != nil {
		klog.Fatal(err)
	}
}
