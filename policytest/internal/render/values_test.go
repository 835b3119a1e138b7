package render

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// TestUnknownValues: against the vendored charts, the keys a chart does not have are found
// (however deep), and the keys it has are not, wherever they are declared: its defaults (Istio's
// under _internal_defaults_do_not_set, and its legacy pilot: prefix), its values.schema.json
// (cert-manager's serviceAccount.annotations is only there), the .Values paths its templates
// read, and below a value the templates pass on whole (meshConfig, configs.cm).
func TestUnknownValues(t *testing.T) {
	cases := []struct {
		chart, values string
		unknown       []string
	}{
		{"istiod-1.30.3", `{autoscaleMin: 3, autoscaleMinn: 3, pilot: {autoscaleMax: 5, autoscaleMaxx: 5}, meshConfig: {anything: {goes: true}}, global: {proxy: {resources: {}, resourcez: {}}}}`,
			[]string{"autoscaleMinn", "global.proxy.resourcez", "pilot.autoscaleMaxx"}},
		{"argo-cd-10.1.1", `{configs: {cm: {any.key: x}, params: {server.insecure: true}}, server: {replicas: 2, replicaz: 2}, redis-ha: {enabled: true, haproxy: {resources: {}}, haproxyy: {}}}`,
			[]string{"redis-ha.haproxyy", "server.replicaz"}},
		{"cert-manager-v1.21.1", `{serviceAccount: {annotations: {a: b}}, webhook: {resourcez: {}}, global: {leaderElection: {namespace: x}}}`,
			[]string{"webhook.resourcez"}},
		{"kube-prometheus-stack-88.5.3", `{grafana: {sidecar: {resources: {}}, sidecarz: {}}, prometheus-node-exporter: {containerSecurityContext: {readOnlyRootFilesystem: true}}, kubeEtcd: {enabled: false}}`,
			[]string{"grafana.sidecarz"}},
	}
	for _, tc := range cases {
		c, err := LoadChart(filepath.Join("..", "..", "charts", tc.chart+".tgz"))
		require.NoError(t, err, tc.chart)
		var values map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(tc.values), &values))
		assert.Equal(t, tc.unknown, UnknownValues(values, c.Known), tc.chart)
	}
}

// TestSyncedByArgoCD: the Helm hooks Argo CD runs during a sync stay in the render, the others
// (helm test, rollback and delete hooks) do not; an Argo CD hook annotation wins.
func TestSyncedByArgoCD(t *testing.T) {
	for hooks, synced := range map[string]bool{
		"": true, "pre-install": true, "post-install,post-upgrade": true, "crd-install": true,
		"test": false, "test-success": false, "pre-delete": false, "post-delete": false, "pre-rollback": false,
	} {
		objs, err := DecodeObjects([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {helm.sh/hook: '" + hooks + "'}}\n"))
		require.NoError(t, err)
		if hooks == "" {
			objs[0].SetAnnotations(nil)
		}
		assert.Equal(t, synced, SyncedByArgoCD(objs[0]), "helm.sh/hook %q", hooks)
	}
	objs, err := DecodeObjects([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {helm.sh/hook: test, argocd.argoproj.io/hook: PostSync}}\n"))
	require.NoError(t, err)
	assert.True(t, SyncedByArgoCD(objs[0]), "an Argo CD hook annotation wins over Helm's")
}
