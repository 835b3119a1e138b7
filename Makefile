# CloudLab platform. `make verify` is the one command a contributor runs (and CI: .ci/run).
# `make help` lists the targets.

SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help
CLUSTERS := dev staging prod
CLUSTER ?= dev

include tools/tools.mk

export HELM HELM4 KUBECTL_VALIDATE CONTROL_PLANE KWOK ISTIOCTL DYFF PROMTOOL PROMQL_NAMES

# The render command (policytest/cmd/render): every Application as Argo CD renders it, upstream
# charts included (from policytest/charts), one file per Application and an index.json.
# It and the policytest test binary are linked only when a source of policytest/ or go.mod/go.sum
# changes: `go run` and `go test` link them anew each time (~8 s of CPU apiece).
# tools/rendered is the format of rendered/<env>/ that the render and the simulator share.
RENDERED_FORMAT := $(wildcard tools/rendered/*.go) tools/rendered/go.mod tools/rendered/go.sum
POLICYTEST_SOURCES := $(shell find policytest -name '*.go' -not -path '*/testdata/*') go.mod go.sum $(RENDERED_FORMAT)
RENDER_BIN := rendered/.bin/render
RENDER := $(RENDER_BIN) -helm $(HELM)
# -s -w: no symbol table or DWARF, which only a debugger reads: a faster link on a cold machine.
$(RENDER_BIN): $(POLICYTEST_SOURCES)
	@mkdir -p $(@D) && go build -ldflags '-s -w' -o $@ ./policytest/cmd/render
# The opa CLI (`opa test policy/`): a `tool` of go.mod, so it is the OPA the Go tests import, and
# its packages compile once for both. After the render command and before the test binaries
# (order-only): two go builds of one module side by side would compile their shared packages
# twice. By hand: `go tool opa test policy/`.
OPA := rendered/.bin/opa
$(OPA): go.mod go.sum | $(RENDER_BIN)
	@go build -ldflags '-s -w' -o $@ github.com/open-policy-agent/opa

# make simulate CLUSTER=dev runs dev's services on a real node (docs/simulate.md); REAL=0 skips it.
REAL ?= 1
SIMULATOR := rendered/.bin/simulate
SIMULATE_FLAGS = -bin $(CONTROL_PLANE) -kwok $(KWOK) -istioctl $(ISTIOCTL)
REAL_NODE_FLAGS = -real-node $(REAL_NODE) -podinfo $(PODINFO) -image-bins rendered/.bin -image-cache $(TOOLS_CACHE)/realnode-images
real_node_flags = $(if $(and $(filter dev,$(1)),$(filter 1,$(REAL))),$(REAL_NODE_FLAGS))

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# make verify runs its stages as a graph: the render first (every cluster, once), then what
# needs it (go test, the simulation) next to what does not (checksums, vet, opa), as many at
# once as make may (-j); each prints its time when it ends (tools/timed). Independent stages
# added later only need a target and a place in VERIFY_STAGES.
VERIFY_STAGES := verify-checksums verify-vet verify-vet-tools verify-opa verify-test verify-stores verify-simulate
VERIFY_JOBS ?= 4
# GNU make >= 4 keeps each stage's output together; older makes interleave it.
OUTPUT_SYNC := $(if $(filter output-sync,$(.FEATURES)),--output-sync=target)

.PHONY: verify
# First what every stage needs, side by side (on a cold machine the tools' one build takes most of
# the time; the render and test binaries compile beside it), then the stages.
verify: ## render every cluster as Argo CD would, validate every object, run every policy and test, simulate each environment
	@tools/timed build $(MAKE) --no-print-directory -j$(VERIFY_JOBS) tools $(RENDER_BIN) $(OPA) $(POLICYTEST) $(SIMULATOR) promql-names
	@tools/timed verify $(MAKE) --no-print-directory -k -j$(VERIFY_JOBS) $(OUTPUT_SYNC) $(VERIFY_STAGES)

.PHONY: $(VERIFY_STAGES) render-all
verify-checksums:
	@tools/timed chart-checksums bash -c 'cd policytest/charts && sha256sum --quiet -c SHA256SUMS'
# go vet, and gofmt: a file gofmt would change is named (`gofmt -w <file>` fixes it).
verify-vet:
	@tools/timed go-vet bash -c 'go vet ./... && unformatted=$$(gofmt -l policytest tools) && { [ -z "$$unformatted" ] || { echo "gofmt: not formatted (gofmt -w fixes it): $$unformatted"; exit 1; }; }'
# The whole tools module, with every analyzer (its tests run with -vet=off: this stage vets them).
verify-vet-tools:
	@tools/timed go-vet-tools bash -c '$(TOOLS_GO) vet ./...'
verify-opa: $(OPA)
	@tools/timed opa-test $(OPA) test policy/
render-all: $(TOOLS) $(RENDER_BIN) ## render every cluster into rendered/<env>/ (findings stay in each index.json)
	@tools/timed render $(RENDER) -cluster all -out rendered -keep-going
# The Go tests of policytest, linked only when a source changes (go test would link them anew
# each time) and run as two stages: the stores' scripts against real PostgreSQL and Redis (they
# mostly wait on those servers) beside everything else. Each test binary runs in its package's
# folder, as go test runs it; go vet ran in its own stage.
TESTS_BIN := $(CURDIR)/rendered/.bin/tests
POLICYTEST := $(TESTS_BIN)/policytest.test
INTERNAL_TESTS := $(patsubst %/,%,$(sort $(dir $(wildcard policytest/internal/*/*_test.go))))
RUN_POLICYTEST = cd policytest && RENDERED=rendered $(POLICYTEST) -test.count=1 -test.v -test.timeout=15m
RUN_INTERNAL_TESTS = $(foreach d,$(INTERNAL_TESTS),(cd $(d) && $(TESTS_BIN)/$(notdir $(d)).test -test.count=1 && echo "ok  $(d)") &&) true
HIDE_PASSES := grep --line-buffered -vE '^ *(=== (RUN|PAUSE|CONT|NAME)|--- PASS)'
STORE_TESTS := Scripts$$
$(POLICYTEST): $(POLICYTEST_SOURCES) | $(OPA)
	@mkdir -p $(@D) && go test -c -ldflags '-s -w' -o $(@D)/ ./policytest/ $(addprefix ./,$(INTERNAL_TESTS)) >/dev/null
# Both stages sit behind the result cache (tools/cached, docs/verify.md#result-cache). The Go
# tests read files from all over the repository: their key is every file git would commit
# (tools/tree-key), the test binaries, the tools they run and the CLOUDLAB_* switches. The stores'
# scripts read only the data tier's rendered objects, the stand-ins and the host's servers: a
# change elsewhere does not run them again.
TEST_TOOLS = tools-$(TOOLS_KEY) $(OPA) $(PROMQL_NAMES)
STORE_HOST = $(shell command -v bwrap redis-server valkey-server redis-cli valkey-cli) $(wildcard /usr/lib/postgresql/*/bin)
CLOUDLAB_SWITCHES = REQUIRE_STORE_SCRIPTS=$(CLOUDLAB_REQUIRE_STORE_SCRIPTS) REQUIRE_REAL_NODE=$(CLOUDLAB_REQUIRE_REAL_NODE)
verify-test: render-all $(POLICYTEST) promql-names
	@set -o pipefail; tools/timed go-test tools/cached go-test "tree $$(tools/tree-key)" $(TESTS_BIN) $(TEST_TOOLS) "$(CLOUDLAB_SWITCHES)" "$$(go env GOVERSION)" -- \
	  bash -c '($(RUN_POLICYTEST) -test.skip "$(STORE_TESTS)") && $(RUN_INTERNAL_TESTS)' 2>&1 | $(HIDE_PASSES)
verify-stores: render-all $(POLICYTEST)
	@set -o pipefail; tools/timed go-test-stores tools/cached go-test-stores -n 'store scripts: SKIP' $(POLICYTEST) $(wildcard rendered/*/data-postgresql.yaml rendered/*/data-redis.yaml) \
	  policytest/testdata/standins $(STORE_HOST) "$(CLOUDLAB_SWITCHES)" -- bash -c '$(RUN_POLICYTEST) -test.run "$(STORE_TESTS)"' 2>&1 | $(HIDE_PASSES)
verify-simulate: render-all
	@tools/timed simulate-all $(MAKE) --no-print-directory simulate-rendered

.PHONY: render
render: $(TOOLS) $(RENDER_BIN) ## write what Argo CD applies to CLUSTER (default dev) into rendered/CLUSTER/, one file per Application
	@case " $(CLUSTERS) " in *" $(CLUSTER) "*) ;; *) echo "CLUSTER must be one of: $(CLUSTERS)"; exit 2;; esac
	$(RENDER) -cluster $(CLUSTER) -out rendered/$(CLUSTER)

# make diff: BASE is a git revision; CLUSTER, when given, limits the diff to that cluster.
BASE ?= origin/main
.PHONY: diff
diff: $(TOOLS) ## show what changes between BASE (default origin/main) and the work tree, per cluster and Application, field by field (CLUSTER= to limit)
	@tools/diff "$(BASE)" $(if $(filter command line environment,$(origin CLUSTER)),$(CLUSTER))

# What a simulation's result depends on besides the rendered objects and the environment's shape
# (tools/cached keys on all of it: docs/verify.md#result-cache).
# dev's real node adds its programs and what the host offers it (a run that skipped the real node
# is never kept: tools/cached -n).
real_node_inputs = $(if $(and $(filter dev,$(1)),$(filter 1,$(REAL)),$(REAL_NODE_HOST)),$(REAL_NODE_HOST_TOOLS))
REAL_NODE_HOST_TOOLS = $(shell command -v runc iptables nft conntrack ip) $(wildcard /sys/fs/cgroup/cgroup.controllers)

# The launcher, and the probe and pause programs of the real node's images: rebuilt when a
# source of tools/simulate changes.
# After the tools' build (order-only), whose compiled packages it reuses: built beside it, both
# would compile the same k8s.io packages at once.
$(SIMULATOR): $(shell find tools/simulate -name '*.go') tools/simulate/go.mod tools/simulate/go.sum $(RENDERED_FORMAT) | $(TOOLS)
	@mkdir -p rendered/.bin && $(TOOLS_GO) build -o $(CURDIR)/rendered/.bin/ ./cmd/simulate ./cmd/probe ./cmd/pause
# promql-names (tools/tools.mk) is built from the same module: after the simulator, not beside it.
promql-names: | $(SIMULATOR)

.PHONY: simulate
simulate: render $(TOOLS) $(SIMULATOR) ## apply CLUSTER to a real control plane with simulated nodes (dev: its services on a real node; REAL=0 skips that); report in rendered/CLUSTER/simulation.{txt,svg}
	$(SIMULATOR) -cluster $(CLUSTER) $(SIMULATE_FLAGS) $(call real_node_flags,$(CLUSTER))

.PHONY: simulate-all simulate-rendered
simulate-all: render-all $(TOOLS) ## make simulate for every cluster in parallel, and the simulation's own tests
	@$(MAKE) --no-print-directory simulate-rendered

# Every environment at once from rendered/ (each its own control plane; they mostly wait; dev's
# real node among them), plus the simulation's own tests (an oversized pod must fail; the packet
# check's decisions; the injection selectors), then every report in turn. A run whose inputs all
# passed before is not repeated (tools/cached): RESULT_CACHE=off repeats it.
simulate-rendered: $(SIMULATOR)
	@toolkey="tools-$(TOOLS_KEY) REAL=$(REAL) $(CLOUDLAB_SWITCHES)"; \
	for c in $(CLUSTERS); do \
	  real=; inputs=; [ $$c = dev ] && real="$(call real_node_flags,dev)" && inputs="$(call real_node_inputs,dev)"; \
	  ( tools/cached simulate-$$c -o rendered/$$c/simulation.txt -o rendered/$$c/simulation.svg -n '^SKIP real node' \
	      rendered/$$c/index.json rendered/$$c/objects.json clusters/$$c/simulation.yaml tools/simulate tools/rendered $$inputs "$$toolkey" -- \
	      $(SIMULATOR) -cluster $$c $(SIMULATE_FLAGS) $$real > rendered/$$c/simulate.log 2>&1; echo $$? > rendered/$$c/simulate.rc ) & \
	done; \
	( tools/cached simulate-test rendered/dev/index.json rendered/dev/objects.json "tree $$(tools/tree-key)" "$$toolkey" -- \
	    bash -c '$(TOOLS_GO) test -vet=off -count=1 ./... && cd ../rendered && go test -count=1 ./...' > rendered/.bin/test.log 2>&1; echo $$? > rendered/.bin/test.rc ) & \
	wait; rc=0; \
	for c in $(CLUSTERS); do grep -v -e '^\[' -e 'warnings.go' rendered/$$c/simulate.log; [ "$$(cat rendered/$$c/simulate.rc)" = 0 ] || rc=1; done; \
	cat rendered/.bin/test.log; [ "$$(cat rendered/.bin/test.rc)" = 0 ] || rc=1; exit $$rc

.PHONY: docs
docs: $(TOOLS) ## regenerate the generated parts of the docs (the catalog table of docs/services.md, the picture of docs/architecture.md)
	cd policytest && UPDATE_DOCS=1 HELM=$(HELM) go test -count=1 -run '^(TestServicesDocTable|TestArchitectureDiagram)$$' .

.PHONY: bench-services
bench-services: $(TOOLS) ## render time of the services Application with 12 and with 48 catalog entries, side by side
	go test -count=1 -run '^$$' -bench '^BenchmarkServicesRender$$' -benchtime $(or $(BENCHTIME),5x) ./policytest/

.PHONY: clean
clean: ## remove rendered/ (the tool cache in $(TOOLS_CACHE) is kept)
	rm -rf rendered
