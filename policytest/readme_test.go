package policytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/check"
	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readme is README.md's text.
func readme(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	return string(data)
}

// yamlKinds are the kinds of the objects in the YAML files below dir (kustomization files too).
func yamlKinds(t *testing.T, dir string) map[string]bool {
	t.Helper()
	kinds := map[string]bool{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		objs, err := render.DecodeObjects(data)
		if err != nil {
			return err
		}
		for _, o := range objs {
			kinds[o.GetKind()] = true
		}
		return nil
	}))
	return kinds
}

// TestReadmeFolders: README's "What is where" table names exactly the top-level folders of the
// repository, and what it says each holds is so.
func TestReadmeFolders(t *testing.T) {
	text := readme(t)
	section := text[strings.Index(text, "## What is where"):]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	var listed []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z]+)/(?:<env>/)?` \\|").FindAllStringSubmatch(section, -1) {
		listed = append(listed, m[1])
	}
	var folders []string
	if out, err := exec.Command("git", "-C", "..", "ls-files").Output(); err == nil {
		for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if top, _, ok := strings.Cut(f, "/"); ok && !strings.HasPrefix(top, ".") && !slices.Contains(folders, top) {
				folders = append(folders, top)
			}
		}
	} else { // not a git checkout: every folder but the hidden ones and what make writes
		entries, err := os.ReadDir("..")
		require.NoError(t, err)
		for _, e := range entries {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && e.Name() != "rendered" {
				folders = append(folders, e.Name())
			}
		}
	}
	slices.Sort(listed)
	slices.Sort(folders)
	assert.Equal(t, folders, listed, "README's table of folders must name every top-level folder git tracks, and only those")

	// apps/: only Argo CD objects and the kustomizations that put them together.
	for kind := range yamlKinds(t, "../apps") {
		assert.Contains(t, []string{"Application", "AppProject", "Kustomization", "Component"}, kind, "apps/ holds a %s", kind)
	}
	// platform/data/<store>/ and services/chart: local charts; clusters/<env>/data/<store>/values.yaml each.
	stores, err := filepath.Glob("../platform/data/*/Chart.yaml")
	require.NoError(t, err)
	require.Len(t, stores, 7, "platform/data/: one chart per store")
	assert.FileExists(t, "../services/chart/Chart.yaml")
	envs, err := render.Clusters("..")
	require.NoError(t, err)
	assert.Equal(t, []string{"dev", "prod", "staging"}, envs, "clusters/<env>/bootstrap")
	for _, env := range envs {
		for _, chart := range stores {
			store := filepath.Base(filepath.Dir(chart))
			assert.FileExists(t, filepath.Join("../clusters", env, "data", store, "values.yaml"))
		}
		values, err := filepath.Glob(filepath.Join("../clusters", env, "values", "*.yaml"))
		require.NoError(t, err)
		assert.NotEmpty(t, values, "clusters/%s/values/<chart>.yaml", env)
	}
	// policy/: one concern per file, each with its test; the one list of exceptions.
	policies, err := filepath.Glob("../policy/*.rego")
	require.NoError(t, err)
	for _, p := range policies {
		if !strings.HasSuffix(p, "_test.rego") {
			assert.FileExists(t, strings.TrimSuffix(p, ".rego")+"_test.rego")
		}
	}
	for _, f := range []string{"../policy/exceptions.yaml", "testdata/broken/expected-findings.txt", "charts/SHA256SUMS",
		"../tools/tools.mk", "../tools/simulate/go.mod", "../tools/rendered/go.mod", "../docs/architecture.md", "../docs/decisions/README.md"} {
		assert.FileExists(t, f)
	}
}

// TestReadmeCommands: the quick start is the two commands, .ci/run runs exactly `make verify`,
// every `make <target>` README names is a target of the Makefile, and every relative link of
// README leads to a file or folder of the repository.
func TestReadmeCommands(t *testing.T) {
	text := readme(t)
	start := text[strings.Index(text, "## Quick start"):]
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(start)
	require.NotNil(t, block, "README: the quick start's sh block")
	var commands []string
	for _, line := range strings.Split(strings.TrimSpace(block[1]), "\n") {
		cmd, _, _ := strings.Cut(line, "#")
		commands = append(commands, strings.TrimSpace(cmd))
	}
	assert.Equal(t, []string{"make simulate CLUSTER=dev", "make verify"}, commands, "README's quick start")

	ci, err := os.ReadFile("../.ci/run")
	require.NoError(t, err)
	var run []string
	for _, line := range strings.Split(string(ci), "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "make") {
			run = append(run, l)
		}
	}
	assert.Equal(t, []string{"make verify"}, run, ".ci/run calls exactly make verify")

	makefile, err := os.ReadFile("../Makefile")
	require.NoError(t, err)
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z-]*):`).FindAllStringSubmatch(string(makefile), -1) {
		targets[m[1]] = true
	}
	for _, m := range regexp.MustCompile("`make ([a-z][a-z-]*)").FindAllStringSubmatch(text, -1) {
		assert.True(t, targets[m[1]], "README names `make %s`, which the Makefile has no target for", m[1])
	}
	for _, m := range regexp.MustCompile(`\]\(([^)#:]+)(#[^)]*)?\)`).FindAllStringSubmatch(text, -1) {
		_, err := os.Stat(filepath.Join("..", m[1]))
		assert.NoError(t, err, "README links to %s", m[1])
	}
}

// TestReadmeWaves: README's table of waves ("How a change reaches a cluster") names, for each
// wave, its sync-wave band and exactly the Applications every cluster syncs in it.
func TestReadmeWaves(t *testing.T) {
	text := readme(t)
	row := regexp.MustCompile("(?m)^\\| ([a-z]+) \\| (\\d+)–(\\d+) \\| (.*) \\|$")
	name := regexp.MustCompile("`([a-z0-9-]+)`")
	rows := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(text, -1) {
		for _, n := range name.FindAllStringSubmatch(m[4], -1) {
			rows[m[1]] = append(rows[m[1]], n[1])
		}
		i := slices.Index(check.Waves, m[1])
		require.GreaterOrEqual(t, i, 0, "README: wave %s is none of %v", m[1], check.Waves)
		assert.Equal(t, []string{strconv.Itoa(i * 10), strconv.Itoa(i*10 + 9)}, []string{m[2], m[3]}, "README: the sync-waves of wave %s", m[1])
	}
	require.Len(t, rows, len(check.Waves), "README: one row per wave")
	// Tracing and logging are opt-in in dev (apps/components/without-observability drops the
	// Applications labelled cloudlab.io/observability=true): a cluster may lack those, no other.
	optional := map[string]bool{}
	for _, c := range repo(t).Clusters {
		for _, a := range c.Apps {
			if a.Application.Labels["cloudlab.io/observability"] == "true" {
				optional[a.Name()] = true
			}
		}
	}
	for _, c := range repo(t).Clusters {
		got := map[string][]string{}
		for _, a := range c.Apps {
			w := a.Application.Labels["cloudlab.io/wave"]
			got[w] = append(got[w], a.Name())
		}
		for w, names := range rows {
			want := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return optional[n] && !slices.Contains(got[w], n) })
			assert.ElementsMatch(t, got[w], want, "README: the Applications of wave %s in %s", w, c.Name)
		}
	}
}
