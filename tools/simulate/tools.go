//go:build tools

// Package tools keeps the control-plane commands in this module's graph: `make` builds
// kube-apiserver, kube-controller-manager and kube-scheduler from these versions.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	_ "k8s.io/kubernetes/cmd/kube-scheduler/app"
)
