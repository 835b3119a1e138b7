# Every program a check runs, built from pinned Go modules and cached OUTSIDE the clone: a warm
# `make verify` finds them and builds nothing. Only the Go module proxy is contacted; nothing is
# downloaded from GitHub or a release page.
#
# The versions are not written here: each program is a `tool` of the tools module,
# tools/simulate/go.mod, pinned by its require line (Renovate's gomod manager proposes the bumps).
# They are built by ONE `go build` from that one module graph (docs/decisions/0071): helm,
# kubectl-validate, promtool, KWOK, istioctl, the control plane and the real node all need
# k8s.io's libraries, and in one graph those compile once (~11 min on 2 cores, against ~40 when
# each tool was built from its own graph). The folder is named by a hash of everything the build
# reads (go.mod, go.sum, our sources compiled in, the flags, the Go version): bumping any version
# builds a new folder beside the old, and the name alone tells two builds apart (the result
# cache keys on it: docs/verify.md#result-cache).

TOOLS_CACHE ?= $(HOME)/.cache/cloudlab/tools
TOOLS_MODULE := tools/simulate
# Every Go build make runs uses these settings (the tools, the render command, opa, the tests and
# vet of all three modules): one configuration, so a package two of them share (the standard
# library first) is compiled once on a machine, not once per configuration. -trimpath also makes
# the programs the same bytes whichever checkout builds them; nothing here needs cgo. `override`:
# a GOFLAGS or CGO_ENABLED of the environment or the command line is replaced, not merged, as the
# tools' folder name (below) says how they were built and cannot name a configuration it does
# not know.
override export CGO_ENABLED := 0
override export GOFLAGS := -trimpath -buildvcs=false
TOOLS_GO := cd $(TOOLS_MODULE) && go

tools_module_version = $(shell awk '$$1=="$(1)" {print $$2; exit} $$1=="require" && $$2=="$(1)" {print $$3; exit}' $(TOOLS_MODULE)/go.mod)
KUBERNETES_VERSION := $(call tools_module_version,k8s.io/kubernetes)
HELM_VERSION       := $(call tools_module_version,helm.sh/helm/v3)
HELM4_VERSION      := $(call tools_module_version,helm.sh/helm/v4)
CONTAINERD_VERSION := $(call tools_module_version,github.com/containerd/containerd/v2)
# podinfo, the image dev's services run on the real node. Its module path has no /v6, so the
# proxy refuses @v6.9.2: go.mod pins the pseudo-version of the commit tagged 6.9.2 (`podinfo
# --version` prints 6.9.2). The launcher refuses a podinfo other than dev's image tag
# (clusters/dev/services/deployment-dev.yaml).

# The tools' packages (the `tool` lines of go.mod) and our own commands compiled with them.
# The real node (docs/simulate.md, "The real node") needs Linux and root (and Debian's runc;
# .ci/run installs it): elsewhere its programs are not built, and the launcher prints one SKIP
# line saying why. CoreDNS is cmd/coredns (only the plugins it uses); cmd/netpol is a patched
# kube-network-policies (tools/simulate/third_party: this machine's kernel has no
# CONFIG_NFT_QUEUE; docs/decisions/0020-real-node.md).
REAL_NODE_HOST := $(shell [ "$$(uname -s)" = Linux ] && [ "$$(id -u)" = 0 ] && command -v runc >/dev/null && echo yes)
CNI_PLUGIN_PACKAGES := github.com/containernetworking/plugins/plugins/main/bridge \
	github.com/containernetworking/plugins/plugins/ipam/host-local github.com/containernetworking/plugins/plugins/main/loopback
# The binaries' names in the build folder, moved into cni/ after the build.
CNI_PLUGINS := $(notdir $(CNI_PLUGIN_PACKAGES))
REAL_NODE_PACKAGES := k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy \
	github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
	github.com/containerd/containerd/v2/cmd/ctr ./cmd/coredns ./cmd/netpol \
	$(CNI_PLUGIN_PACKAGES) github.com/stefanprodan/podinfo/cmd/podinfo
# Every other `tool` of go.mod, read from there (a tool added there is built); helm 4 apart (below).
GO_MOD_TOOLS := $(shell awk '$$1=="tool" {if ($$2=="(") block=1; else print $$2; next} $$1==")" {block=0} block {print $$1}' $(TOOLS_MODULE)/go.mod)
TOOL_PACKAGES := $(filter-out $(REAL_NODE_PACKAGES) helm.sh/helm/v4/cmd/helm,$(GO_MOD_TOOLS))
BUILD_PACKAGES := $(TOOL_PACKAGES) $(if $(REAL_NODE_HOST),$(REAL_NODE_PACKAGES))
# no_btrfs: containerd without the btrfs snapshotter (it needs cgo); remove_all_sd: promtool
# without the cloud service discoveries it never uses here (Prometheus's README, "Service
# discovery plugins"), two thirds of its source.
BUILD_TAGS := no_btrfs,remove_all_sd
# Version strings the upstream releases set with ldflags. A plain build of helm v3 reports
# Kubernetes v1.20 as its default capabilities and an empty version: kustomize asks `helm version
# --short`, and our chart says kubeVersion >= 1.32. -s -w: no symbol table or DWARF (faster links).
BUILD_LDFLAGS := -s -w \
	-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=32 \
	-X k8s.io/component-base/version.gitVersion=$(KUBERNETES_VERSION) \
	-X k8s.io/component-base/version.gitMajor=$(word 1,$(subst ., ,$(KUBERNETES_VERSION:v%=%))) \
	-X k8s.io/component-base/version.gitMinor=$(word 2,$(subst ., ,$(KUBERNETES_VERSION:v%=%))) \
	-X github.com/containerd/containerd/v2/version.Version=$(CONTAINERD_VERSION)
HELM4_LDFLAGS := -s -w -X helm.sh/helm/v4/internal/version.version=$(HELM4_VERSION)

# Our own sources compiled into the tools: a change builds a new folder.
TOOLS_SOURCES := $(TOOLS_MODULE)/go.mod $(TOOLS_MODULE)/go.sum \
	$(wildcard $(TOOLS_MODULE)/cmd/coredns/*.go $(TOOLS_MODULE)/cmd/netpol/*.go \
	$(TOOLS_MODULE)/third_party/kube-network-policies/go.mod $(TOOLS_MODULE)/third_party/kube-network-policies/pkg/networkpolicy/*.go)
# tools/tools.mk itself is in the key (how they are built: flags, CGO_ENABLED, -trimpath, the
# folder's layout), and so is the Go environment that changes the machine code.
TOOLS_KEY := $(shell { cat $(TOOLS_SOURCES) tools/tools.mk; echo '$(BUILD_PACKAGES)'; $(TOOLS_GO) env GOVERSION GOOS GOARCH GOAMD64 GOEXPERIMENT; } | sha256sum | cut -c1-12)
ifeq ($(TOOLS_KEY),)
$(error tools/tools.mk: no key for the tools' folder: sha256sum (GNU coreutils) is needed)
endif
TOOLS_DIR := $(TOOLS_CACHE)/tools-$(TOOLS_KEY)
TOOLS := $(TOOLS_DIR)/.complete

HELM             := $(TOOLS_DIR)/helm
HELM4            := $(TOOLS_DIR)/helm4
KUBECTL_VALIDATE := $(TOOLS_DIR)/kubectl-validate
PROMTOOL         := $(TOOLS_DIR)/promtool
DYFF             := $(TOOLS_DIR)/dyff
KWOK             := $(TOOLS_DIR)/kwok
ISTIOCTL         := $(TOOLS_DIR)/istioctl
# The simulator finds the control plane (kube-apiserver...) and the real node's programs
# (kubelet..., cni/) by name in one folder; podinfo beside its ui/.
CONTROL_PLANE    := $(TOOLS_DIR)
REAL_NODE        := $(TOOLS_DIR)
PODINFO          := $(TOOLS_DIR)/podinfo

# The one build: into a temporary folder first, so an interrupted build leaves nothing half
# done. `go list` first (it downloads the modules, and counts the packages), then `go build -v`;
# tools/go-progress turns their output into a line every 30 s and passes any error through.
$(TOOLS):
	@echo ">> building the tools into $(@D) (first run only: ~11 min on 2 cores; one build of tools/simulate/go.mod's tools)"
	@rm -rf $(@D).partial && mkdir -p $(@D).partial
	@set -o pipefail; trap 'rm -rf $(@D).partial' ERR; { ($(TOOLS_GO) list -deps -tags $(BUILD_TAGS) -f '{{if not .Standard}}{{.ImportPath}}{{end}}' $(BUILD_PACKAGES) helm.sh/helm/v4/cmd/helm > $(@D).partial/.packages) \
		&& ($(TOOLS_GO) build -v -tags $(BUILD_TAGS) -ldflags '$(BUILD_LDFLAGS)' -o $(@D).partial/ $(BUILD_PACKAGES)) \
		&& ($(TOOLS_GO) build -v -ldflags '$(HELM4_LDFLAGS)' -o $(@D).partial/helm4 helm.sh/helm/v4/cmd/helm); } 2>&1 \
		| tools/go-progress tools $(@D).partial/.packages
ifneq ($(REAL_NODE_HOST),)
	@cd $(@D).partial && mkdir cni && mv $(CNI_PLUGINS) cni/ && mv podinfo podinfo.bin && mkdir podinfo && mv podinfo.bin podinfo/podinfo
	@ui="$$($(TOOLS_GO) list -m -f '{{.Dir}}' github.com/stefanprodan/podinfo)/ui" && cp -r "$$ui" $(@D).partial/podinfo/ui && chmod -R u+w $(@D).partial/podinfo/ui
endif
	@touch $(@D).partial/.complete && rm -rf $(@D) && mv $(@D).partial $(@D)

# Our own PromQL reader (cmd/promql-names), on the parser promtool is built from; rebuilt by
# every make verify (a second when nothing changed), so it is not cached by version; after the
# tools' build, whose compiled packages it reuses, and after the simulator's (Makefile: one go
# build of the tools module at a time).
PROMQL_NAMES := $(CURDIR)/rendered/.bin/promql-names
.PHONY: promql-names
promql-names: | $(TOOLS)
	@mkdir -p $(dir $(PROMQL_NAMES))
	@$(TOOLS_GO) build -o $(PROMQL_NAMES) ./cmd/promql-names

.PHONY: tools
tools: $(TOOLS) ## build (once) every program the checks run: helm 3 and 4, kubectl-validate, promtool, KWOK, istioctl, dyff, the control plane, the real node (Linux, root)
