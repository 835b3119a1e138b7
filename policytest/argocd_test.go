package policytest

import (
	"os"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// TestArgoCDSettings: the argocd-cm settings the waves and the services chart depend on are in
// the values that both the bootstrap and the self-managing argocd Application use.
func TestArgoCDSettings(t *testing.T) {
	data, err := os.ReadFile("../platform/argocd/values.yaml")
	require.NoError(t, err)
	var values struct {
		Configs struct {
			CM map[string]string `json:"cm"`
		} `json:"configs"`
	}
	require.NoError(t, yaml.Unmarshal(data, &values))
	health := values.Configs.CM["resource.customizations.health.argoproj.io_Application"]
	assert.Contains(t, health, "obj.status.health.status", "Application health check restored, so waves of Applications wait for each other")
	assert.Contains(t, health, `hs.status = "Progressing"`, "an Application without status yet is Progressing, not Healthy")
	assert.Contains(t, values.Configs.CM["kustomize.buildOptions"], "--enable-helm", "services/ inflates its chart through kustomize")
}

// TestSyncPolicyPerEnvironment: every child Application syncs automatically with self-heal;
// prod's data Applications alone do not prune on their own.
func TestSyncPolicyPerEnvironment(t *testing.T) {
	r := repo(t)
	for _, c := range r.Clusters {
		for _, a := range c.Apps {
			sp := a.Application.Spec.SyncPolicy
			require.NotNil(t, sp, "%s/%s", c.Name, a.Name())
			require.NotNil(t, sp.Automated, "%s/%s", c.Name, a.Name())
			assert.True(t, sp.Automated.SelfHeal, "%s/%s selfHeal", c.Name, a.Name())
			wantPrune := !(c.Name == "prod" && a.Application.Labels["cloudlab.io/wave"] == "data")
			assert.Equal(t, wantPrune, sp.Automated.Prune, "%s/%s prune", c.Name, a.Name())
		}
	}
}

// TestClusterPaths: each cluster's Applications point at that cluster's folder only.
func TestClusterPaths(t *testing.T) {
	r := repo(t)
	for _, c := range r.Clusters {
		for _, a := range c.AllApps() {
			for _, src := range a.Application.Spec.GetSources() {
				if src.Path != "" {
					assert.Regexp(t, `^clusters/`+c.Name+`/`, src.Path, "%s/%s", c.Name, a.Name())
				}
			}
			for _, vf := range a.ValueFiles {
				assert.NotContains(t, vf, "CLUSTER", "%s/%s", c.Name, a.Name())
				// shared values in platform/<chart>/, the environment's in clusters/<env>/values/
				assert.Regexp(t, `^(platform/[a-z-]+/values\.yaml|clusters/`+c.Name+`/values/[a-z-]+\.yaml)$`, vf, "%s/%s", c.Name, a.Name())
			}
		}
		assert.Equal(t, render.RootName, c.Root.Name())
	}
}
