package policytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/check"
	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const chartDir = "../services/chart"

// helm runs one helm binary and returns its combined output.
func helm(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

func helmBinaries(t *testing.T) map[string]string {
	t.Helper()
	bins := map[string]string{"helm3": os.Getenv("HELM"), "helm4": os.Getenv("HELM4")}
	for name, b := range bins {
		if b == "" {
			t.Fatalf("%s is not set: run the tests with `make verify`", strings.ToUpper(name))
		}
	}
	return bins
}

// catalogValues are the -f arguments of the services release: the catalog's values files, in
// the order services/kustomization.yaml lists them.
func catalogValues(t *testing.T) []string {
	t.Helper()
	var args []string
	seen := map[string]bool{}
	for _, s := range catalog(t).Services {
		if !seen[s.File] {
			seen[s.File] = true
			args = append(args, "-f", filepath.Join("..", filepath.FromSlash(s.File)))
		}
	}
	require.NotEmpty(t, args)
	return args
}

// TestChartLintAndHelmMajors: the release of the whole catalog passes `helm lint --strict` with
// Helm 3 and Helm 4, and both render the same objects (Helm 4 separates documents with one more
// blank line, so objects are compared, not bytes).
func TestChartLintAndHelmMajors(t *testing.T) {
	bins := helmBinaries(t)
	values := catalogValues(t)
	rendered := map[string][]*unstructured.Unstructured{}
	for name, bin := range bins {
		out, err := helm(t, bin, append([]string{"lint", "--strict", chartDir}, values...)...)
		assert.NoError(t, err, "%s lint:\n%s", name, out)
		out, err = helm(t, bin, append([]string{"template", "services", chartDir, "-n", "cloudlab", "--kube-version", "1.32.0"}, values...)...)
		require.NoError(t, err, "%s template:\n%s", name, out)
		rendered[name], err = render.DecodeObjects([]byte(out))
		require.NoError(t, err)
	}
	assert.Equal(t, rendered["helm3"], rendered["helm4"], "Helm 3 and Helm 4 render different objects")
	assert.Len(t, deployments(rendered["helm3"]), len(catalog(t).Services), "one Deployment per catalog entry")
}

func deployments(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		if o.GetKind() == "Deployment" {
			out = append(out, o.GetName())
		}
	}
	return out
}

// TestChartRejectsBadValues: a bad value fails the render, with Helm 3 and Helm 4, with a message
// that names it: schema faults by their path, catalog faults by service and key.
func TestChartRejectsBadValues(t *testing.T) {
	bins := helmBinaries(t)
	values := catalogValues(t)
	cases := []struct {
		name string
		set  []string
		want string
	}{
		{"missing default probe", []string{"serviceDefaults.probes.liveness=null"}, "at '/serviceDefaults/probes': missing property 'liveness'"},
		{"unknown key of a service", []string{"services.auth.replicaz=2"}, "at '/services/auth': additional properties 'replicaz' not allowed"},
		{"unknown nested key", []string{"services.auth.autoscaling.min=2"}, "at '/services/auth/autoscaling': additional properties 'min' not allowed"},
		{"calledBy (calls are written by the caller only)", []string{"services.user.calledBy={auth}"}, "at '/services/user': additional properties 'calledBy' not allowed"},
		{"non-exact image tag", []string{"services.auth.image.tag=latest"}, "at '/services/auth/image/tag': 'latest' does not match pattern"},
		{"floating major tag", []string{"services.auth.image.tag=1.2"}, "at '/services/auth/image/tag': '1.2' does not match pattern"},
		{"missing memory limit", []string{"serviceDefaults.resources.limits.memory=null"}, "at '/serviceDefaults/resources/limits': missing property 'memory'"},
		{"service without image", []string{"services.billing.replicas=1"}, "at '/services/billing': missing property 'image'"},
		{"service name not a DNS label", []string{"services.Billing.image.repository=ghcr.io/cloudlab/billing"}, "invalid propertyName 'Billing'"},
		{"route outside /api/", []string{"services.auth.publicRoute.prefix=/auth"}, "at '/services/auth/publicRoute/prefix': '/auth' does not match pattern"},
		{"unknown data store", []string{"services.auth.dataStores={mongodb}"}, `services.auth.dataStores: "mongodb" is not a store of this chart`},
		{"unknown callee", []string{"services.auth.calls={billing}"}, `services.auth.calls: "billing" is not a service of the catalog`},
		{"calls itself", []string{"services.auth.calls={auth}"}, `services.auth.calls: "auth" calls itself`},
		{"overlapping routes", []string{"services.search.publicRoute.prefix=/api/authors"}, `services.search.publicRoute.prefix "/api/authors" starts with services.auth.publicRoute.prefix "/api/auth"`},
		{"min above max replicas", []string{"services.auth.autoscaling.minReplicas=9"}, "services.auth.autoscaling.minReplicas (9) is greater than autoscaling.maxReplicas (6)"},
		{"grace shorter than preStop", []string{"services.auth.shutdown.terminationGracePeriodSeconds=2"}, "services.auth.shutdown.terminationGracePeriodSeconds must be at least shutdown.preStopSleepSeconds"},
	}
	for _, tc := range cases {
		for name, bin := range bins {
			args := append([]string{"template", "services", chartDir}, values...)
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := helm(t, bin, args...)
			assert.Error(t, err, "%s/%s: rendered although %v is invalid", name, tc.name, tc.set)
			assert.Contains(t, out, tc.want, "%s/%s: message names the value", name, tc.name)
		}
	}
}

// TestChartHelmTest: with tests on, the release renders a `helm test` pod per service that GETs
// /readyz as a native-sidecar meshed pod, and each service's policies admit exactly that pod for
// that path.
func TestChartHelmTest(t *testing.T) {
	bins := helmBinaries(t)
	args := append([]string{"template", "services", chartDir, "-n", "cloudlab", "--set", "tests.enabled=true"}, catalogValues(t)...)
	out, err := helm(t, bins["helm3"], args...)
	require.NoError(t, err, out)
	objs, err := render.DecodeObjects([]byte(out))
	require.NoError(t, err)
	found := map[string]bool{}
	for _, o := range objs {
		found[o.GetKind()+"/"+o.GetName()] = true
		if o.GetKind() == "Pod" {
			assert.Equal(t, "test", o.GetAnnotations()["helm.sh/hook"])
			assert.Equal(t, "true", o.GetAnnotations()["sidecar.istio.io/nativeSidecar"], "the proxy must exit when the test does")
		}
	}
	assert.Contains(t, out, "http://user.cloudlab.svc.cluster.local:8080/readyz")
	assert.Contains(t, out, "cluster.local/ns/cloudlab/sa/user-test")
	assert.Contains(t, out, "paths: [/readyz]")
	for _, s := range catalog(t).Names() {
		for _, want := range []string{"Pod/" + s + "-test-readyz", "ServiceAccount/" + s + "-test", "NetworkPolicy/" + s + "-test"} {
			assert.True(t, found[want], "helm test renders %s", want)
		}
	}
	// The test pods' paths open no call: the catalog's calls are unchanged.
	assert.Equal(t, check.CallStrings(catalog(t).Calls()), check.CallStrings(check.AuthorizationPolicyCalls(objs, "cloudlab", "cluster.local")))
}
