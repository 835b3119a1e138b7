# CloudLab platform. `make verify` is the one command a contributor runs (and CI: .ci/run).
# `make help` lists the targets.

SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help
CLUSTERS := dev staging prod
CLUSTER ?= dev

include tools/tools.mk

export HELM HELM4 KUBECTL_VALIDATE CONTROL_PLANE KWOK PROMTOOL PROMQL_NAMES

# make simulate CLUSTER=dev runs dev's services on a real node (docs/simulate.md); REAL=0 skips it.
REAL ?= 1
SIMULATOR := rendered/.bin/simulate
# The launcher, and the probe and pause programs of the real node's images.
SIMULATE_BUILD = mkdir -p rendered/.bin && cd tools/simulate && CGO_ENABLED=0 go build -o ../../rendered/.bin/ ./cmd/simulate ./cmd/probe ./cmd/pause
REAL_NODE_FLAGS = -real-node $(REAL_NODE) -podinfo $(PODINFO) -image-bins rendered/.bin -image-cache $(TOOLS_CACHE)/realnode-images
real_node_flags = $(if $(and $(filter dev,$(1)),$(filter 1,$(REAL))),$(REAL_NODE_FLAGS))

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: verify
verify: tools simulate-tools ## render every cluster as Argo CD would, validate every object, run every policy and test, simulate each environment
	@tools/timed crd-checksums bash -c 'cd policytest/crds && sha256sum --quiet -c SHA256SUMS'
	@tools/timed go-vet go vet ./...
	@tools/timed go-vet-promql bash -c 'cd tools/promql && go vet ./...'
	@tools/timed opa-test $(OPA) test policy/
	@set -o pipefail; tools/timed go-test go test -count=1 -v ./policytest/... 2>&1 \
	  | grep --line-buffered -vE '^ *(=== (RUN|PAUSE|CONT)|--- PASS)'
	@tools/timed simulate-all $(MAKE) --no-print-directory simulate-all


.PHONY: render
render: $(HELM) ## write what Argo CD applies to CLUSTER (default dev) into rendered/CLUSTER/, one file per Application
	@case " $(CLUSTERS) " in *" $(CLUSTER) "*) ;; *) echo "CLUSTER must be one of: $(CLUSTERS)"; exit 2;; esac
	go run ./policytest/cmd/render -cluster $(CLUSTER) -out rendered/$(CLUSTER) -helm $(HELM)

.PHONY: simulate
simulate: render simulate-tools ## apply CLUSTER to a real control plane with simulated nodes (dev: its services on a real node; REAL=0 skips that); report in rendered/CLUSTER/simulation.{txt,svg}
	@$(SIMULATE_BUILD)
	$(SIMULATOR) -cluster $(CLUSTER) -bin $(CONTROL_PLANE) -kwok $(KWOK) $(call real_node_flags,$(CLUSTER))

# Every environment at once (each its own control plane; they mostly wait; dev's real node
# among them), plus the simulation's own tests (an oversized pod must fail; the packet check's
# decisions), then every report in turn.
.PHONY: simulate-all
simulate-all: simulate-tools $(HELM) ## make simulate for every cluster in parallel, and the simulation's own tests
	@go run ./policytest/cmd/render -cluster all -out rendered -helm $(HELM) >/dev/null
	@$(SIMULATE_BUILD)
	@for c in $(CLUSTERS); do \
	  real=; [ $$c = dev ] && [ "$(REAL)" = 1 ] && real="$(REAL_NODE_FLAGS)"; \
	  ( $(SIMULATOR) -cluster $$c -bin $(CONTROL_PLANE) -kwok $(KWOK) $$real > rendered/$$c/simulate.log 2>&1; echo $$? > rendered/$$c/simulate.rc ) & \
	done; \
	( cd tools/simulate && CGO_ENABLED=0 go test -count=1 ./... > ../../rendered/.bin/test.log 2>&1; echo $$? > ../../rendered/.bin/test.rc ) & \
	wait; rc=0; \
	for c in $(CLUSTERS); do grep -v '^\[' rendered/$$c/simulate.log; [ "$$(cat rendered/$$c/simulate.rc)" = 0 ] || rc=1; done; \
	cat rendered/.bin/test.log; [ "$$(cat rendered/.bin/test.rc)" = 0 ] || rc=1; exit $$rc

.PHONY: docs
docs: ## regenerate the generated parts of the docs (the service catalog table of docs/services.md)
	UPDATE_DOCS=1 go test -count=1 -run '^TestServicesDocTable$$' ./policytest/

.PHONY: bench-services
bench-services: $(HELM) ## render time of the services Application with 12 and with 48 catalog entries, side by side
	go test -count=1 -run '^$$' -bench '^BenchmarkServicesRender$$' -benchtime $(or $(BENCHTIME),5x) ./policytest/

.PHONY: clean
clean: ## remove rendered/ (the tool cache in $(TOOLS_CACHE) is kept)
	rm -rf rendered
