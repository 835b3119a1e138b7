# CloudLab platform. `make verify` is the one command a contributor runs (and CI: .ci/run).
# `make help` lists the targets.

SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help
CLUSTERS := dev staging prod
CLUSTER ?= dev

include tools/tools.mk

export HELM HELM4 KUBECTL_VALIDATE CONTROL_PLANE KWOK PROMTOOL PROMQL_NAMES

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
simulate: render $(KUBE_APISERVER) $(KWOK) ## apply CLUSTER to a real control plane with simulated nodes; report in rendered/CLUSTER/simulation.{txt,svg}
	cd tools/simulate && go run ./cmd/simulate -cluster $(CLUSTER) -repo ../.. -bin $(CONTROL_PLANE) -kwok $(KWOK)

# Every environment at once (each its own control plane; they mostly wait), plus the
# simulation's own test (an oversized pod must fail), then every report in turn.
SIMULATOR := rendered/.bin/simulate
.PHONY: simulate-all
simulate-all: simulate-tools $(HELM) ## make simulate for every cluster in parallel, and the simulation's own tests
	@go run ./policytest/cmd/render -cluster all -out rendered -helm $(HELM) >/dev/null
	@mkdir -p $(dir $(SIMULATOR)) && cd tools/simulate && go build -o ../../$(SIMULATOR) ./cmd/simulate
	@for c in $(CLUSTERS); do \
	  ( $(SIMULATOR) -cluster $$c -bin $(CONTROL_PLANE) -kwok $(KWOK) > rendered/$$c/simulate.log 2>&1; echo $$? > rendered/$$c/simulate.rc ) & \
	done; \
	( cd tools/simulate && go test -count=1 ./... > ../../rendered/.bin/test.log 2>&1; echo $$? > ../../rendered/.bin/test.rc ) & \
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
