package render

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"sigs.k8s.io/yaml"
)

func TestTypedValueProblems(t *testing.T) {
	values := func(meshConfig string) map[string]any {
		var v map[string]any
		if err := yaml.Unmarshal([]byte("meshConfig:\n"+meshConfig), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	good := `
  defaultConfig: {holdApplicationUntilProxyStarts: true, tracing: {}}
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
  accessLogFile: /dev/stdout
  extensionProviders:
    - {name: otel, opentelemetry: {service: c.observability.svc.cluster.local, port: 4317}}
`
	assert.Empty(t, TypedValueProblems("istiod", values(good)))
	assert.Empty(t, TypedValueProblems("gateway", values("  anything: 1\n")), "a chart without typed values")

	for meshConfig, want := range map[string]string{
		"  outboundTrafficPolicy: {modee: REGISTRY_ONLY}\n":                           "meshConfig.outboundTrafficPolicy.modee: not a field of istio.mesh.v1alpha1.MeshConfig",
		"  defaultConfig: {holdApplicationUntilProxyStartz: true}\n":                  "meshConfig.defaultConfig.holdApplicationUntilProxyStartz: not a field of istio.mesh.v1alpha1.MeshConfig",
		"  extensionProviders: [{name: otel, opentelemetry: {servic: c, port: 1}}]\n": "meshConfig.extensionProviders[0].opentelemetry.servic: not a field of istio.mesh.v1alpha1.MeshConfig",
	} {
		assert.Equal(t, []string{want}, TypedValueProblems("istiod", values(meshConfig)), meshConfig)
	}
	// a known field with a value of the wrong kind: protojson's message
	got := TypedValueProblems("istiod", values("  outboundTrafficPolicy: {mode: REGISTRY_ONLYY}\n"))
	if assert.Len(t, got, 1) {
		assert.Contains(t, got[0], "meshConfig: not a valid istio.mesh.v1alpha1.MeshConfig:")
		assert.Contains(t, got[0], "REGISTRY_ONLYY")
	}
}
