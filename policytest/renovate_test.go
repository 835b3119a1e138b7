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
// manager proposes its updates: tools/tools.mk writes no version of its own (any assignment whose
// value starts with a version fails), and the module of every `tool` of the tools module
// (tools/simulate/go.mod) and of the root go.mod (the opa CLI) is required there and updated — a
// direct requirement, or (Go marks a tool's module `// indirect`, which Renovate skips by default)
// named in a rule that enables indirect updates of that file — and no later rule switches it off
// again (by package name or glob, or a gomod rule for that file that names no package). Two tools
// move by hand and must not be updated: podinfo (dev's image tag) and istio.io/istio (a master
// commit until a release commit is served, decision 0031). The other pins are Go modules (go.mod
// files) and images: those of the data tier's charts are checked by TestRenovateCoversDataImages,
// the rest Renovate's own managers find.
func TestRenovateCoversEveryPin(t *testing.T) {
	data, err := os.ReadFile("../renovate.json")
	require.NoError(t, err)
	var cfg struct {
		Argocd struct {
			ManagerFilePatterns []string `json:"managerFilePatterns"`
		} `json:"argocd"`
		PackageRules []renovateRule `json:"packageRules"`
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
	// Any make assignment (:=, =, ?=, +=) whose value starts with a version number.
	for _, p := range regexp.MustCompile(`(?m)^\s*([A-Za-z0-9_]+)\s*[:?+]?=\s*(v?\d+\.\d+\S*)`).FindAllStringSubmatch(string(mk), -1) {
		t.Errorf("tools/tools.mk: %s = %s: pin it in tools/simulate/go.mod (go get -tool <package>@<version>), where Renovate's gomod manager reads it", p[1], p[2])
	}

	byHand := map[string]string{
		"github.com/stefanprodan/podinfo": "its version is dev's image tag",
		"istio.io/istio":                  "it is a master commit until the proxy serves a release commit (decision 0031)",
	}
	toolsUpdated(t, cfg.PackageRules, "tools/simulate/go.mod", byHand)
	toolsUpdated(t, cfg.PackageRules, "go.mod", nil)
}

// renovateRule is the part of a renovate.json packageRule that decides whether a Go module's
// updates are proposed.
type renovateRule struct {
	MatchManagers     []string `json:"matchManagers"`
	MatchFileNames    []string `json:"matchFileNames"`
	MatchDepTypes     []string `json:"matchDepTypes"`
	MatchPackageNames []string `json:"matchPackageNames"`
	Enabled           *bool    `json:"enabled"`
}

// toolsUpdated asserts that Renovate, with these rules, updates the module of every `tool` of the
// go.mod file (a path from the repository's root), except those that move by hand (module → why),
// which it must not update.
func toolsUpdated(t *testing.T, rules []renovateRule, file string, byHand map[string]string) {
	on := goModUpdates(rules, file)
	gomod, err := os.ReadFile("../" + file)
	require.NoError(t, err)
	f, err := modfile.Parse(file, gomod, nil)
	require.NoError(t, err)
	require.NotEmpty(t, f.Tool, "%s lists no tool", file)
	for _, tool := range f.Tool {
		var req *modfile.Require
		for _, r := range f.Require {
			if (tool.Path == r.Mod.Path || strings.HasPrefix(tool.Path, r.Mod.Path+"/")) && (req == nil || len(r.Mod.Path) > len(req.Mod.Path)) {
				req = r
			}
		}
		if !assert.NotNil(t, req, "%s: tool %s: no require line pins its module", file, tool.Path) {
			continue
		}
		updated := on(req.Mod.Path, req.Indirect)
		if why, ok := byHand[req.Mod.Path]; ok {
			assert.False(t, updated, "renovate.json updates %s, which moves by hand: %s", req.Mod.Path, why)
			continue
		}
		if req.Indirect {
			assert.True(t, updated, "%s: %s %s (the module of tool %s) is `// indirect`, which Renovate skips unless a rule enables it: add it to the rule of renovate.json that enables indirect updates of %s, and let no later rule switch it off", file, req.Mod.Path, req.Mod.Version, tool.Path, file)
		} else {
			assert.True(t, updated, "%s: %s %s (the module of tool %s): a rule of renovate.json switches its updates off", file, req.Mod.Path, req.Mod.Version, tool.Path)
		}
	}
}

// goModUpdates says, for a module the go.mod file (a path from the repository's root) requires
// (indirect: marked `// indirect`), whether Renovate with these rules proposes its updates.
// Renovate's gomod manager gives direct requirements the depType "require" and updates them by
// default, and indirect ones the depType "indirect", off by default
// (docs.renovatebot.com/modules/manager/gomod/); it applies every matching packageRule in order,
// the later winning. A rule matches unless it names other managers, files, dependency types or
// packages (a name or a glob: `*` within a path element, `**` across them).
func goModUpdates(rules []renovateRule, file string) func(module string, indirect bool) bool {
	globMatches := func(globs []string, s string) bool {
		for _, g := range globs {
			re := "^" + strings.NewReplacer(`\*\*`, ".*", `\*`, "[^/]*").Replace(regexp.QuoteMeta(g)) + "$"
			if regexp.MustCompile(re).MatchString(s) {
				return true
			}
		}
		return false
	}
	return func(module string, indirect bool) bool {
		depType := "require"
		if indirect {
			depType = "indirect"
		}
		on := !indirect
		for _, r := range rules {
			if r.Enabled == nil ||
				len(r.MatchManagers) > 0 && !slices.Contains(r.MatchManagers, "gomod") ||
				len(r.MatchFileNames) > 0 && !globMatches(r.MatchFileNames, file) ||
				len(r.MatchDepTypes) > 0 && !slices.Contains(r.MatchDepTypes, depType) ||
				len(r.MatchPackageNames) > 0 && !globMatches(r.MatchPackageNames, module) {
				continue
			}
			on = *r.Enabled
		}
		return on
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
