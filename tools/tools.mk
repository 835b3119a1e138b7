# Every binary a check needs, built from a pinned Go module and cached OUTSIDE the clone,
# in a folder named by tool and version: a warm `make verify` finds it and builds nothing,
# and bumping a version below builds the new one beside the old.
#
# Only the Go module proxy is contacted (go install pkg@version); nothing is downloaded
# from GitHub or a release page. Each tool is built in its own module graph (go install
# pkg@version, never a requirement of our go.mod): helm's k8s.io 0.34 would collide with
# the k8s.io 0.31 that argo-cd v2 pins in our module.

TOOLS_CACHE ?= $(HOME)/.cache/cloudlab/tools

# renovate: go helm.sh/helm/v3
HELM_VERSION            := v3.19.5
# Helm 4, only to prove the services chart renders identically with both majors.
# renovate: go helm.sh/helm/v4
HELM4_VERSION           := v4.3.1
KUBECTL_VALIDATE_MODULE := sigs.k8s.io/kubectl-validate
# No tag after v0.0.4 (which stops at Kubernetes 1.30); this commit embeds schemas up to 1.35.
# renovate: go sigs.k8s.io/kubectl-validate
KUBECTL_VALIDATE_VERSION := v0.0.5-0.20260105161640-a97ccfaca20b

# The opa CLI, so that `opa test policy/` can be run by hand and by make verify; same version
# as the OPA library in go.mod, so both give the same result.
OPA_VERSION             := $(shell awk '$$1=="github.com/open-policy-agent/opa" {print $$2}' go.mod)

# The simulated control plane (make simulate): Kubernetes from tools/simulate/go.mod, and KWOK.
KUBERNETES_VERSION      := $(shell awk '$$1=="k8s.io/kubernetes" {print $$2}' tools/simulate/go.mod)
# renovate: go sigs.k8s.io/kwok
KWOK_VERSION            := v0.8.0

# istioctl, only for `istioctl kube-inject` in make simulate: istiod's own sidecar injector, run
# offline on the injection templates, values and mesh config of the rendered (vendored 1.30.3)
# istiod chart (docs/decisions/0031-simulated-sidecars.md). istio.io/istio has no semver tags and
# the Go module proxy serves no pseudo-version of the 1.30.3 commit: this is the newest commit it
# serves (master, 2026-08-27); what it injects comes from the 1.30.3 templates.
# renovate: go istio.io/istio
ISTIOCTL_VERSION        := v0.0.0-20260827124520-eed52ebb66ad

# dyff, for make diff: a YAML diff that knows Kubernetes objects (by apiVersion, kind, namespace
# and name) and reports field by field.
# renovate: go github.com/homeport/dyff
DYFF_VERSION            := v1.12.0

# promtool, at the Prometheus that kube-prometheus-stack deploys (v3.14.0 = Go module v0.314.0),
# from tools/promql/go.mod: Prometheus's go.mod has a replace line, so it cannot be
# `go install`ed by version; that module requires it and copies the line (tools/promql/go.mod).
PROMETHEUS_VERSION      := $(shell awk '$$1=="require" && $$2=="github.com/prometheus/prometheus" {print $$3}' tools/promql/go.mod)

HELM             := $(TOOLS_CACHE)/helm-$(HELM_VERSION)/helm
CONTROL_PLANE    := $(TOOLS_CACHE)/kubernetes-$(KUBERNETES_VERSION)
KUBE_APISERVER   := $(CONTROL_PLANE)/kube-apiserver
KWOK             := $(TOOLS_CACHE)/kwok-$(KWOK_VERSION)/kwok
ISTIOCTL         := $(TOOLS_CACHE)/istioctl-$(ISTIOCTL_VERSION)/istioctl
DYFF             := $(TOOLS_CACHE)/dyff-$(DYFF_VERSION)/dyff
HELM4            := $(TOOLS_CACHE)/helm-$(HELM4_VERSION)/helm
OPA              := $(TOOLS_CACHE)/opa-$(OPA_VERSION)/opa
KUBECTL_VALIDATE := $(TOOLS_CACHE)/kubectl-validate-$(KUBECTL_VALIDATE_VERSION)/kubectl-validate
PROMTOOL         := $(TOOLS_CACHE)/promtool-$(PROMETHEUS_VERSION)/promtool
# Our own PromQL reader (tools/promql/cmd/promql-names), on the same parser as promtool; rebuilt
# by every make verify (seconds when nothing changed), so it is not cached by version.
PROMQL_NAMES     := $(CURDIR)/rendered/.bin/promql-names

# A plain `go install` of helm v3 reports Kubernetes v1.20 as its default capabilities and
# an empty version string (upstream sets both with ldflags at release). Kustomize asks
# `helm version --short`, and our chart says kubeVersion >= 1.32, so set them the way the
# release build does.
HELM_LDFLAGS := -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=32

$(HELM):
	@echo ">> building helm $(HELM_VERSION) into $(@D) (first run only, ~3 min)"
	@mkdir -p $(@D)
	GOBIN=$(@D) GOFLAGS=-buildvcs=false go install -ldflags '$(HELM_LDFLAGS)' helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

$(HELM4):
	@echo ">> building helm $(HELM4_VERSION) into $(@D) (first run only, ~3 min)"
	@mkdir -p $(@D)
	GOBIN=$(@D) GOFLAGS=-buildvcs=false go install -ldflags '-X helm.sh/helm/v4/internal/version.version=$(HELM4_VERSION)' helm.sh/helm/v4/cmd/helm@$(HELM4_VERSION)

$(KUBECTL_VALIDATE):
	@echo ">> building kubectl-validate $(KUBECTL_VALIDATE_VERSION) into $(@D) (first run only, ~3 min)"
	@mkdir -p $(@D)
	GOBIN=$(@D) GOFLAGS=-buildvcs=false go install $(KUBECTL_VALIDATE_MODULE)@$(KUBECTL_VALIDATE_VERSION)

$(OPA):
	@echo ">> building opa $(OPA_VERSION) into $(@D) (first run only, ~3 min)"
	@mkdir -p $(@D)
	GOBIN=$(@D) GOFLAGS=-buildvcs=false go install github.com/open-policy-agent/opa@$(OPA_VERSION)

# k8s.io/kubernetes cannot be `go install`ed (its go.mod replaces the staging modules), so the
# tools/simulate module requires it with the published v0.x staging modules and builds the
# three commands; into a temporary folder first, so an interrupted build leaves nothing half done.
# CGO_ENABLED=0 for everything built from tools/simulate (control plane, real node, launcher):
# one build configuration, so each package of that module graph is compiled once and shared.
$(KUBE_APISERVER):
	@echo ">> building kube-apiserver, kube-controller-manager, kube-scheduler $(KUBERNETES_VERSION) into $(@D) (first run only, ~6 min)"
	@rm -rf $(@D).partial && mkdir -p $(@D).partial
	cd tools/simulate && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -o $(@D).partial/ \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
	@rm -rf $(@D) && mv $(@D).partial $(@D)

# Into a temporary folder first, so an interrupted build leaves nothing half done.
$(PROMTOOL):
	@echo ">> building promtool $(PROMETHEUS_VERSION) into $(@D) (first run only, ~10 min: Prometheus brings its cloud SDKs)"
	@rm -rf $(@D).partial && mkdir -p $(@D).partial
	cd tools/promql && GOFLAGS=-buildvcs=false go build -o $(@D).partial/promtool github.com/prometheus/prometheus/cmd/promtool
	@rm -rf $(@D) && mv $(@D).partial $(@D)

.PHONY: promql-names
promql-names:
	@mkdir -p $(dir $(PROMQL_NAMES))
	@cd tools/promql && GOFLAGS=-buildvcs=false go build -o $(PROMQL_NAMES) ./cmd/promql-names

$(KWOK):
	@echo ">> building kwok $(KWOK_VERSION) into $(@D) (first run only, ~2 min)"
	@mkdir -p $(@D)
	GOBIN=$(@D) GOFLAGS=-buildvcs=false go install sigs.k8s.io/kwok/cmd/kwok@$(KWOK_VERSION)

$(DYFF):
	@echo ">> building dyff $(DYFF_VERSION) into $(@D) (first run only, ~1 min)"
	@mkdir -p $(@D)
	GOBIN=$(@D) GOFLAGS=-buildvcs=false go install github.com/homeport/dyff/cmd/dyff@$(DYFF_VERSION)

$(ISTIOCTL):
	@echo ">> building istioctl $(ISTIOCTL_VERSION) into $(@D) (first run only, ~8 min)"
	@rm -rf $(@D).partial && mkdir -p $(@D).partial
	GOBIN=$(@D).partial GOFLAGS=-buildvcs=false go install istio.io/istio/istioctl/cmd/istioctl@$(ISTIOCTL_VERSION)
	@rm -rf $(@D) && mv $(@D).partial $(@D)

# The real node of `make simulate CLUSTER=dev` (docs/simulate.md, "The real node"): kubelet and
# kube-proxy at the control plane's version, containerd with its runc shim and ctr, the CNI
# plugins, CoreDNS (cmd/coredns: only the plugins it uses) and the NetworkPolicy enforcer
# (cmd/netpol: kube-network-policies), all from tools/simulate/go.mod in one build: they share
# most compiled packages with each other and with the control plane. The enforcer is a patched
# copy of kube-network-policies (tools/simulate/third_party: this machine's kernel has no
# CONFIG_NFT_QUEUE; docs/decisions/0020-real-node.md). podinfo, the image dev's services run,
# is built from its own module at the tag dev deploys.
simulate_module_version = $(shell awk '$$1=="$(1)" {print $$2}' tools/simulate/go.mod)
CONTAINERD_VERSION  := $(call simulate_module_version,github.com/containerd/containerd/v2)
CNI_PLUGINS_VERSION := $(call simulate_module_version,github.com/containernetworking/plugins)
COREDNS_VERSION     := $(call simulate_module_version,github.com/coredns/coredns)
KNP_VERSION         := $(call simulate_module_version,sigs.k8s.io/kube-network-policies)
# podinfo's module path has no /v6, so the proxy refuses @v6.9.2: this pseudo-version is the
# commit tagged 6.9.2 (`podinfo --version` prints 6.9.2). Keep it equal to dev's image tag
# (clusters/dev/services/deployment-dev.yaml): the launcher refuses a mismatch.
PODINFO_VERSION        := 6.9.2
# renovate: go github.com/stefanprodan/podinfo
PODINFO_MODULE_VERSION := v1.8.1-0.20250910200901-e86405a8674e
# Our own sources compiled into the real node's folder: a change rebuilds it.
REAL_NODE_SOURCES := $(wildcard tools/simulate/cmd/coredns/*.go tools/simulate/cmd/netpol/*.go tools/simulate/third_party/kube-network-policies/pkg/networkpolicy/*.go)
REAL_NODE := $(TOOLS_CACHE)/realnode-k8s$(KUBERNETES_VERSION)-containerd$(CONTAINERD_VERSION)-coredns$(COREDNS_VERSION)-knp$(KNP_VERSION)-cni$(CNI_PLUGINS_VERSION)-$(shell cat $(REAL_NODE_SOURCES) | sha256sum | cut -c1-8)
PODINFO   := $(TOOLS_CACHE)/podinfo-$(PODINFO_VERSION)
REAL_NODE_LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(KUBERNETES_VERSION) \
	-X k8s.io/component-base/version.gitMajor=$(word 1,$(subst ., ,$(KUBERNETES_VERSION:v%=%))) \
	-X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(KUBERNETES_VERSION:v%=%))) \
	-X github.com/containerd/containerd/v2/version.Version=$(CONTAINERD_VERSION)

# Order-only: the folder's name already carries a hash of REAL_NODE_SOURCES, and every worktree
# shares the folder, so a newer file time in one checkout must not rebuild it for all; -trimpath
# makes the programs the same bytes whichever worktree builds them (the simulation's result
# cache keys on them).
$(REAL_NODE)/kubelet: | $(REAL_NODE_SOURCES)
	@echo ">> building the real node into $(@D) (first run only, ~8 min): kubelet, kube-proxy $(KUBERNETES_VERSION), containerd $(CONTAINERD_VERSION), CNI plugins $(CNI_PLUGINS_VERSION), CoreDNS $(COREDNS_VERSION), kube-network-policies $(KNP_VERSION)"
	@rm -rf $(@D).partial && mkdir -p $(@D).partial/cni
	cd tools/simulate && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -tags no_btrfs -ldflags '$(REAL_NODE_LDFLAGS)' -o $(@D).partial/ \
		k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy \
		github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
		github.com/containerd/containerd/v2/cmd/ctr ./cmd/coredns ./cmd/netpol
	cd tools/simulate && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags '-s -w' -o $(@D).partial/cni/ \
		github.com/containernetworking/plugins/plugins/main/bridge github.com/containernetworking/plugins/plugins/ipam/host-local \
		github.com/containernetworking/plugins/plugins/main/loopback
	@rm -rf $(@D) && mv $(@D).partial $(@D)

$(PODINFO)/podinfo:
	@echo ">> building podinfo $(PODINFO_VERSION) into $(@D) (first run only, ~2 min)"
	@rm -rf $(@D).partial && mkdir -p $(@D).partial
	GOBIN=$(@D).partial CGO_ENABLED=0 GOFLAGS=-buildvcs=false go install -ldflags '-s -w' github.com/stefanprodan/podinfo/cmd/podinfo@$(PODINFO_MODULE_VERSION)
	cp -r $(shell go env GOMODCACHE)/github.com/stefanprodan/podinfo@$(PODINFO_MODULE_VERSION)/ui $(@D).partial/ui && chmod -R u+w $(@D).partial/ui
	@rm -rf $(@D) && mv $(@D).partial $(@D)

# The real node needs Linux and root (and Debian's runc; .ci/run installs it): elsewhere its
# programs are not built, and the launcher prints one SKIP line saying why.
REAL_NODE_HOST := $(shell [ "$$(uname -s)" = Linux ] && [ "$$(id -u)" = 0 ] && command -v runc >/dev/null && echo yes)
.PHONY: real-node-tools
real-node-tools: $(if $(REAL_NODE_HOST),$(REAL_NODE)/kubelet $(PODINFO)/podinfo) ## build (once) the real node's programs (Linux, root)

.PHONY: simulate-tools
simulate-tools: $(KUBE_APISERVER) $(KWOK) $(ISTIOCTL) real-node-tools ## build (once) the simulated control plane, istioctl and the real node

.PHONY: tools
tools: $(HELM) $(HELM4) $(KUBECTL_VALIDATE) $(OPA) $(PROMTOOL) promql-names ## build (once) every tool the checks use
