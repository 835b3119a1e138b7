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

// TestChartLintAndHelmMajors: for every service, `helm lint --strict` passes with Helm 3 and
// Helm 4, and both render the same objects (Helm 4 separates documents with one more blank line,
// so objects are compared, not bytes).
func TestChartLintAndHelmMajors(t *testing.T) {
	bins := helmBinaries(t)
	services, err := check.LoadServices("..")
	require.NoError(t, err)
	for _, s := range services {
		values := filepath.Join("..", "services", s.Name, "values.yaml")
		rendered := map[string]string{}
		for name, bin := range bins {
			out, err := helm(t, bin, "lint", "--strict", chartDir, "-f", values)
			assert.NoError(t, err, "%s lint %s:\n%s", name, s.Name, out)
			out, err = helm(t, bin, "template", s.Name, chartDir, "-n", "cloudlab", "-f", values, "--kube-version", "1.32.0")
			require.NoError(t, err, "%s template %s:\n%s", name, s.Name, out)
			rendered[name] = out
		}
		h3, err := render.DecodeObjects([]byte(rendered["helm3"]))
		require.NoError(t, err)
		h4, err := render.DecodeObjects([]byte(rendered["helm4"]))
		require.NoError(t, err)
		assert.Equal(t, h3, h4, "%s: Helm 3 and Helm 4 render different objects", s.Name)
		assert.NotEmpty(t, h3, s.Name)
	}
}

// TestChartRejectsBadValues: a bad value fails the render with a message that names it.
func TestChartRejectsBadValues(t *testing.T) {
	bins := helmBinaries(t)
	cases := []struct {
		name string
		set  []string
		want string
	}{
		{"missing probe", []string{"probes.liveness=null"}, "at '/probes': missing property 'liveness'"},
		{"unknown key", []string{"replicaz=2"}, "additional properties 'replicaz' not allowed"},
		{"unknown nested key", []string{"autoscaling.min=2"}, "at '/autoscaling': additional properties 'min' not allowed"},
		{"non-exact image tag", []string{"image.tag=latest"}, "at '/image/tag': 'latest' does not match pattern"},
		{"floating major tag", []string{"image.tag=1.2"}, "at '/image/tag': '1.2' does not match pattern"},
		{"missing memory limit", []string{"resources.limits.memory=null"}, "at '/resources/limits': missing property 'memory'"},
		{"unknown data store", []string{"dataStores={mongodb}"}, `dataStores: "mongodb" is not a store of this chart`},
		{"public route without gateway", []string{"calledBy={order}"}, `publicRoute: "/api/auth" is set but calledBy does not contain "gateway"`},
		{"min above max replicas", []string{"autoscaling.minReplicas=9"}, "autoscaling.minReplicas (9) is greater than autoscaling.maxReplicas (6)"},
	}
	for _, tc := range cases {
		for name, bin := range bins {
			args := []string{"template", "auth", chartDir, "-f", "../services/auth/values.yaml"}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out, err := helm(t, bin, args...)
			assert.Error(t, err, "%s/%s: rendered although %v is invalid", name, tc.name, tc.set)
			assert.Contains(t, out, tc.want, "%s/%s: message names the value", name, tc.name)
		}
	}
}

// TestChartHelmTest: with tests on, the chart renders a `helm test` pod that GETs /readyz as a
// native-sidecar meshed pod, and the service's policies admit exactly that pod for that path.
func TestChartHelmTest(t *testing.T) {
	bins := helmBinaries(t)
	out, err := helm(t, bins["helm3"], "template", "user", chartDir, "-n", "cloudlab", "-f", "../services/user/values.yaml", "--set", "tests.enabled=true")
	require.NoError(t, err, out)
	objs, err := render.DecodeObjects([]byte(out))
	require.NoError(t, err)
	found := map[string]bool{}
	for _, o := range objs {
		found[o.GetKind()+"/"+o.GetName()] = true
		switch {
		case o.GetKind() == "Pod":
			assert.Equal(t, "test", o.GetAnnotations()["helm.sh/hook"])
			assert.Equal(t, "true", o.GetAnnotations()["sidecar.istio.io/nativeSidecar"], "the proxy must exit when the test does")
			assert.Contains(t, out, "http://user.cloudlab.svc.cluster.local:8080/readyz")
		case o.GetKind() == "AuthorizationPolicy":
			assert.Contains(t, out, "cluster.local/ns/cloudlab/sa/user-test")
			assert.Contains(t, out, "paths: [/readyz]")
		}
	}
	for _, want := range []string{"Pod/user-test-readyz", "ServiceAccount/user-test", "NetworkPolicy/user-test"} {
		assert.True(t, found[want], "helm test renders %s", want)
	}
}
