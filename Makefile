# CloudLab platform. `make verify` is the one command a contributor runs (and CI: .ci/run).
# `make help` lists the targets.

SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help
CLUSTERS := dev staging prod
CLUSTER ?= dev

include tools/tools.mk

export HELM HELM4 KUBECTL_VALIDATE

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: verify
verify: tools ## render every cluster as Argo CD would, validate every object, run every policy and test
	@tools/timed crd-checksums bash -c 'cd policytest/crds && sha256sum --quiet -c SHA256SUMS'
	@tools/timed go-vet go vet ./...
	@tools/timed opa-test $(OPA) test policy/
	@set -o pipefail; tools/timed go-test go test -count=1 -v ./policytest/... 2>&1 \
	  | grep --line-buffered -vE '^ *(=== (RUN|PAUSE|CONT)|--- PASS)'


.PHONY: render
render: $(HELM) ## write what Argo CD applies to CLUSTER (default dev) into rendered/CLUSTER/, one file per Application
	@case " $(CLUSTERS) " in *" $(CLUSTER) "*) ;; *) echo "CLUSTER must be one of: $(CLUSTERS)"; exit 2;; esac
	go run ./policytest/cmd/render -cluster $(CLUSTER) -out rendered/$(CLUSTER) -helm $(HELM)

.PHONY: clean
clean: ## remove rendered/ (the tool cache in $(TOOLS_CACHE) is kept)
	rm -rf rendered
