package policytest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/podrun"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/modfile"
)

// TestRenovateCoversEveryPin: renovate.json is JSON, its argocd manager reads every Application
// of apps/ (the chart pins), and every program make verify builds is pinned where Renovate's gomod
// manager proposes its updates: tools/tools.mk writes no version of its own (a `…_VERSION := v…`
// line there fails), and the module of every `tool` of the tools module (tools/simulate/go.mod)
// is required there and updated — a direct requirement, or (Go marks a tool's module `// indirect`,
// which Renovate skips by default) named in a rule that enables indirect updates of that file.
// podinfo is the one tool left out: it follows dev's image tag by hand. The other pins are Go
// modules (go.mod files) and images: those of the data tier's charts are checked by
// TestRenovateCoversDataImages, the rest Renovate's own managers find.
func TestRenovateCoversEveryPin(t *testing.T) {
	data, err := os.ReadFile("../renovate.json")
	require.NoError(t, err)
	var cfg struct {
		Argocd struct {
			ManagerFilePatterns []string `json:"managerFilePatterns"`
		} `json:"argocd"`
		PackageRules []struct {
			MatchManagers     []string `json:"matchManagers"`
			MatchFileNames    []string `json:"matchFileNames"`
			MatchDepTypes     []string `json:"matchDepTypes"`
			MatchPackageNames []string `json:"matchPackageNames"`
			Enabled           *bool    `json:"enabled"`
		} `json:"packageRules"`
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
	for _, p := range regexp.MustCompile(`(?m)^([A-Z0-9_]+_VERSION)\s*:=\s*(v\S+)$`).FindAllStringSubmatch(string(mk), -1) {
		t.Errorf("tools/tools.mk: %s := %s: pin it in tools/simulate/go.mod (go get -tool <package>@%s), where Renovate's gomod manager reads it", p[1], p[2], p[2])
	}

	// Renovate applies every matching rule in order, the later winning: a module's updates are on
	// if the last rule naming it for indirect requirements of the tools module enables them.
	indirectOn := map[string]bool{}
	for _, r := range cfg.PackageRules {
		if r.Enabled == nil || !slices.Equal(r.MatchManagers, []string{"gomod"}) ||
			!slices.Equal(r.MatchFileNames, []string{"tools/simulate/go.mod"}) || !slices.Contains(r.MatchDepTypes, "indirect") {
			continue
		}
		for _, n := range r.MatchPackageNames {
			indirectOn[n] = *r.Enabled
		}
	}
	gomod, err := os.ReadFile("../tools/simulate/go.mod")
	require.NoError(t, err)
	f, err := modfile.Parse("tools/simulate/go.mod", gomod, nil)
	require.NoError(t, err)
	require.NotEmpty(t, f.Tool, "tools/simulate/go.mod lists no tool")
	for _, tool := range f.Tool {
		var req *modfile.Require
		for _, r := range f.Require {
			if (tool.Path == r.Mod.Path || strings.HasPrefix(tool.Path, r.Mod.Path+"/")) && (req == nil || len(r.Mod.Path) > len(req.Mod.Path)) {
				req = r
			}
		}
		if !assert.NotNil(t, req, "tools/simulate/go.mod: tool %s: no require line pins its module", tool.Path) {
			continue
		}
		updated := !req.Indirect || indirectOn[req.Mod.Path]
		if req.Mod.Path == "github.com/stefanprodan/podinfo" {
			assert.False(t, updated, "renovate.json updates podinfo, but its version is dev's image tag: it moves by hand with that tag")
			continue
		}
		assert.True(t, updated, "tools/simulate/go.mod: %s %s (the module of tool %s) is `// indirect`, which Renovate skips: add it to the rule of renovate.json that enables indirect updates of tools/simulate/go.mod", req.Mod.Path, req.Mod.Version, tool.Path)
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
