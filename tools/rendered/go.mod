// The format of rendered/<env>/ — what policytest/cmd/render writes and every later stage
// reads (go test, make simulate, make diff): the index of Applications and their waves, the
// objects by Application, the findings; and the one YAML stream decoder of the repository.
// Its own tiny module so that both the root module (k8s.io 0.31, pinned by argo-cd v2) and
// tools/simulate (k8s.io 0.37) can require it: it needs only apimachinery's stable API, and
// each of them selects its own version of that (docs/decisions/0070-rendered-format-module.md).
module github.com/cloudlab/platform/tools/rendered

go 1.26.0

require k8s.io/apimachinery v0.31.2

require (
	github.com/fxamacker/cbor/v2 v2.7.0 // indirect
	github.com/go-logr/logr v1.4.2 // indirect
	github.com/gogo/protobuf v1.3.2 // indirect
	github.com/google/gofuzz v1.2.0 // indirect
	github.com/json-iterator/go v1.1.12 // indirect
	github.com/modern-go/concurrent v0.0.0-20180306012644-bacd9c7ef1dd // indirect
	github.com/modern-go/reflect2 v1.0.2 // indirect
	github.com/x448/float16 v0.8.4 // indirect
	golang.org/x/net v0.26.0 // indirect
	golang.org/x/text v0.16.0 // indirect
	gopkg.in/inf.v0 v0.9.1 // indirect
	gopkg.in/yaml.v2 v2.4.0 // indirect
	k8s.io/klog/v2 v2.130.1 // indirect
	k8s.io/utils v0.0.0-20240711033017-18e509b52bc8 // indirect
	sigs.k8s.io/json v0.0.0-20221116044647-bc3834ca7abd // indirect
	sigs.k8s.io/structured-merge-diff/v4 v4.4.1 // indirect
	sigs.k8s.io/yaml v1.4.0 // indirect
)
