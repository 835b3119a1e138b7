# Every binary a check needs, built from a pinned Go module and cached OUTSIDE the clone,
# in a folder named by tool and version: a warm `make verify` finds it and builds nothing,
# and bumping a version below builds the new one beside the old.
#
# Only the Go module proxy is contacted (go install pkg@version); nothing is downloaded
# from GitHub or a release page. Each tool is built in its own module graph (go install
# pkg@version, never a requirement of our go.mod): helm's k8s.io 0.34 would collide with
# the k8s.io 0.31 that argo-cd v2 pins in our module.

TOOLS_CACHE ?= $(HOME)/.cache/cloudlab/tools

HELM_VERSION            := v3.19.5
# Helm 4, only to prove the services chart renders identically with both majors.
HELM4_VERSION           := v4.3.1
KUBECTL_VALIDATE_MODULE := sigs.k8s.io/kubectl-validate
# No tag after v0.0.4 (which stops at Kubernetes 1.30); this commit embeds schemas up to 1.35.
KUBECTL_VALIDATE_VERSION := v0.0.5-0.20260105161640-a97ccfaca20b

# The opa CLI, so that `opa test policy/` can be run by hand and by make verify; same version
# as the OPA library in go.mod, so both give the same result.
OPA_VERSION             := $(shell awk '$$1=="github.com/open-policy-agent/opa" {print $$2}' go.mod)

# The simulated control plane (make simulate): Kubernetes from tools/simulate/go.mod, and KWOK.
KUBERNETES_VERSION      := $(shell awk '$$1=="k8s.io/kubernetes" {print $$2}' tools/simulate/go.mod)
KWOK_VERSION            := v0.8.0

# promtool, at the Prometheus that kube-prometheus-stack deploys (v3.14.0 = Go module v0.314.0),
# from tools/promql/go.mod: Prometheus's go.mod has a replace line, so it cannot be
# `go install`ed by version; that module requires it and copies the line (tools/promql/go.mod).
PROMETHEUS_VERSION      := $(shell awk '$$1=="require" && $$2=="github.com/prometheus/prometheus" {print $$3}' tools/promql/go.mod)

HELM             := $(TOOLS_CACHE)/helm-$(HELM_VERSION)/helm
CONTROL_PLANE    := $(TOOLS_CACHE)/kubernetes-$(KUBERNETES_VERSION)
KUBE_APISERVER   := $(CONTROL_PLANE)/kube-apiserver
KWOK             := $(TOOLS_CACHE)/kwok-$(KWOK_VERSION)/kwok
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
$(KUBE_APISERVER):
	@echo ">> building kube-apiserver, kube-controller-manager, kube-scheduler $(KUBERNETES_VERSION) into $(@D) (first run only, ~6 min)"
	@rm -rf $(@D).partial && mkdir -p $(@D).partial
	cd tools/simulate && GOFLAGS=-buildvcs=false go build -o $(@D).partial/ \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
	@rm -rf $(@D) && mv $(@D).partial $(@D)

# Into a temporary folder first, so an interrupted build leaves nothing half done.
$(PROMTOOL):
	@echo ">> building promtool $(PROMETHEUS_VERSION) into $(@D) (first run only, ~5 min)"
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

.PHONY: simulate-tools
simulate-tools: $(KUBE_APISERVER) $(KWOK) ## build (once) the simulated control plane

.PHONY: tools
tools: $(HELM) $(HELM4) $(KUBECTL_VALIDATE) $(OPA) $(PROMTOOL) promql-names ## build (once) every tool the checks use
