package policytest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/podrun"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRenovateCoversEveryPin: renovate.json is JSON, its argocd manager reads every Application
// of apps/ (the chart pins), and its custom managers match every literal version pin of
// tools/tools.mk (a tool added without its `# renovate: go <module>` line fails here). The
// other pins are Go modules (go.mod files) and images: those of the data tier's charts are
// checked by TestRenovateCoversDataImages, the rest Renovate's own managers find.
func TestRenovateCoversEveryPin(t *testing.T) {
	data, err := os.ReadFile("../renovate.json")
	require.NoError(t, err)
	var cfg struct {
		Argocd struct {
			ManagerFilePatterns []string `json:"managerFilePatterns"`
		} `json:"argocd"`
		CustomManagers []struct {
			ManagerFilePatterns []string `json:"managerFilePatterns"`
			MatchStrings        []string `json:"matchStrings"`
		} `json:"customManagers"`
	}
	require.NoError(t, json.Unmarshal(data, &cfg), "renovate.json is not JSON")

	// Renovate writes its file patterns as /regex/.
	matchesFile := func(patterns []string, file string) bool {
		for _, p := range patterns {
			if re := regexp.MustCompile(strings.Trim(p, "/")); re.MatchString(file) {
				return true
			}
		}
		return false
	}
	apps, err := filepath.Glob("../apps/application-*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, apps)
	for _, a := range apps {
		rel := strings.TrimPrefix(a, "../")
		assert.True(t, matchesFile(cfg.Argocd.ManagerFilePatterns, rel), "renovate.json's argocd manager does not read %s", rel)
	}

	mk, err := os.ReadFile("../tools/tools.mk")
	require.NoError(t, err)
	pin := regexp.MustCompile(`(?m)^([A-Z0-9_]+_VERSION)\s*:=\s*(v\S+)$`)
	pins := pin.FindAllStringSubmatch(string(mk), -1)
	require.NotEmpty(t, pins)
	for _, p := range pins {
		covered := false
		for _, m := range cfg.CustomManagers {
			if !matchesFile(m.ManagerFilePatterns, "tools/tools.mk") {
				continue
			}
			for _, ms := range m.MatchStrings {
				for _, found := range regexp.MustCompile(ms).FindAllStringSubmatch(string(mk), -1) {
					covered = covered || strings.Contains(found[0], p[1]) && strings.Contains(found[0], p[2])
				}
			}
		}
		assert.True(t, covered, "tools/tools.mk: %s %s has no Renovate manager: put `# renovate: go <module>` on the line above", p[1], p[2])
	}
}

// TestRenovateCoversDataImages: every image the data tier's Applications run (every container and
// init container of every workload, in every cluster) is found by one of renovate.json's custom
// managers in the file that pins it — the data charts write `<name>: <image>:<tag>` lines that
// Renovate's helm-values manager does not read.
func TestRenovateCoversDataImages(t *testing.T) {
	data, err := os.ReadFile("../renovate.json")
	require.NoError(t, err)
	var cfg struct {
		CustomManagers []struct {
			ManagerFilePatterns []string `json:"managerFilePatterns"`
			MatchStrings        []string `json:"matchStrings"`
			DatasourceTemplate  string   `json:"datasourceTemplate"`
		} `json:"customManagers"`
	}
	require.NoError(t, json.Unmarshal(data, &cfg))

	found := map[string]bool{} // image:tag that a docker manager of renovate.json finds
	for _, m := range cfg.CustomManagers {
		if m.DatasourceTemplate != "docker" {
			continue
		}
		for _, p := range m.ManagerFilePatterns {
			re := regexp.MustCompile(strings.Trim(p, "/"))
			require.NoError(t, filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
				rel := strings.TrimPrefix(path, "../")
				if err != nil || d.IsDir() || !re.MatchString(rel) {
					return err
				}
				text, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				for _, ms := range m.MatchStrings {
					r := regexp.MustCompile(ms)
					for _, hit := range r.FindAllStringSubmatch(string(text), -1) {
						found[hit[r.SubexpIndex("depName")]+":"+hit[r.SubexpIndex("currentValue")]] = true
					}
				}
				return nil
			}))
		}
	}
	for _, c := range repo(t).Clusters {
		for _, o := range dataObjects(c) {
			tmpl, err := podrun.TemplateOf(o)
			if err != nil {
				continue // not a workload
			}
			for _, ctr := range append(tmpl.Spec.InitContainers, tmpl.Spec.Containers...) {
				assert.True(t, found[ctr.Image], "%s: %s %s runs %s, which no docker manager of renovate.json finds", c.Name, o.GetKind(), o.GetName(), ctr.Image)
			}
		}
	}
	assert.NotEmpty(t, found)
}
