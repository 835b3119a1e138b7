package policytest

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// TestVendoredCharts: policytest/charts holds exactly the packages SHA256SUMS lists, each with
// that checksum, named after the chart and version inside it and described in PROVENANCE.md;
// and every chart Application of every cluster pins a version that is vendored there.
func TestVendoredCharts(t *testing.T) {
	sums, err := os.ReadFile("charts/SHA256SUMS")
	require.NoError(t, err)
	listed := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		f := strings.Fields(line)
		require.Len(t, f, 2, "SHA256SUMS line %q", line)
		listed[f[1]] = f[0]
	}
	files, err := filepath.Glob("charts/*.tgz")
	require.NoError(t, err)
	provenance, err := os.ReadFile("charts/PROVENANCE.md")
	require.NoError(t, err)
	vendored := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		want, ok := listed[name]
		assert.True(t, ok, "%s is not in charts/SHA256SUMS", name)
		delete(listed, name)
		assert.Equal(t, want, sha256File(t, f), "%s does not match its checksum in charts/SHA256SUMS", name)
		c, err := render.LoadChart(f)
		require.NoError(t, err)
		assert.Equal(t, c.Name+"-"+c.Version+".tgz", name, "the package's file name says its chart and version")
		assert.Contains(t, string(provenance), name, "charts/PROVENANCE.md describes %s", name)
		vendored[c.Name+" "+c.Version] = true
	}
	assert.Empty(t, listed, "charts/SHA256SUMS lists packages that are not there")

	for _, c := range repo(t).Clusters {
		for _, a := range c.Apps {
			if a.Chart != nil {
				pin := a.Chart.Chart + " " + a.Chart.TargetRevision
				assert.True(t, vendored[pin], "%s/%s pins %s, which policytest/charts does not hold: vendor it (docs/verify.md#bumping-an-upstream-chart)", c.Name, a.Name(), pin)
			}
		}
	}
}

func sha256File(t *testing.T, path string) string {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestMisspelledChartValueFails: a misspelled key in clusters/prod/values/istiod.yaml (a copy
// of this repository, with autoscaleMin written autoscaleMinn) fails the render with exactly
// the line make verify prints; so does one inside the mesh config, which the chart hands on
// whole (outboundTrafficPolicy.modee would leave the mesh at ALLOW_ANY).
func TestMisspelledChartValueFails(t *testing.T) {
	tmp := t.TempDir()
	for _, dir := range []string{"apps", "clusters/prod", "platform"} {
		copyTree(t, filepath.Join("..", dir), filepath.Join(tmp, dir))
	}
	values := filepath.Join(tmp, "clusters/prod/values/istiod.yaml")
	data, err := os.ReadFile(values)
	require.NoError(t, err)
	require.Contains(t, string(data), "\nautoscaleMin: ", "clusters/prod/values/istiod.yaml sets autoscaleMin")
	require.NoError(t, os.WriteFile(values, []byte(strings.Replace(string(data), "\nautoscaleMin: ", "\nautoscaleMinn: ", 1)), 0o644))
	// inside a value the chart hands on whole: Istio's mesh config, checked against its API
	mesh := filepath.Join(tmp, "platform/istiod/values.yaml")
	data, err = os.ReadFile(mesh)
	require.NoError(t, err)
	require.Contains(t, string(data), "    mode: REGISTRY_ONLY\n", "platform/istiod/values.yaml sets meshConfig.outboundTrafficPolicy.mode")
	require.NoError(t, os.WriteFile(mesh, []byte(strings.Replace(string(data), "    mode: REGISTRY_ONLY\n", "    modee: REGISTRY_ONLY\n", 1)), 0o644))

	cfg := config(t, tmp)
	c, err := render.LoadCluster(render.Options{RepoRoot: tmp, ChartDir: cfg.ChartDir, Helm: cfg.Helm, KubeVersion: cfg.KubeVersion + ".0", Apps: []string{"istiod"}}, "prod")
	require.NoError(t, err)
	var got []string
	for _, f := range c.Findings {
		got = append(got, f.String())
	}
	assert.Contains(t, got, "prod/istiod: Application/argocd/istiod: render: clusters/prod/values/istiod.yaml: autoscaleMinn: not a value of istiod 1.30.3")
	assert.Contains(t, got, "prod/istiod: Application/argocd/istiod: render: platform/istiod/values.yaml: meshConfig.outboundTrafficPolicy.modee: not a field of istio.mesh.v1alpha1.MeshConfig")
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	})
	require.NoError(t, err)
}

// TestOneRepositoryURL: the repository's URL is written once (apps/components/repository); every
// Application source and AppProject of every cluster says exactly that URL, and no REPOSITORY
// placeholder survives the render.
func TestOneRepositoryURL(t *testing.T) {
	out, err := exec.Command("git", "-C", "..", "ls-files").Output()
	require.NoError(t, err, "git ls-files")
	r := repo(t)
	url := r.Clusters[0].RepoURL
	require.True(t, strings.HasPrefix(url, "https://"), "the root Application's repoURL %q", url)
	var places []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := sc.Text()
		if strings.HasPrefix(f, "policytest/testdata/") || strings.HasPrefix(f, "docs/") || strings.HasSuffix(f, ".md") {
			continue // fixtures are repositories of their own; documents may quote it
		}
		data, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			continue // a file deleted in the work tree
		}
		if n := strings.Count(string(data), url); n > 0 {
			places = append(places, fmt.Sprintf("%s (%d)", f, n))
		}
	}
	assert.Equal(t, []string{"apps/components/repository/kustomization.yaml (1)"}, places, "the repository URL is written once")

	for _, c := range r.Clusters {
		assert.Equal(t, url, c.RepoURL, "%s: the root Application's repository", c.Name)
		for _, a := range c.AllApps() {
			for _, src := range a.Application.Spec.GetSources() {
				if src.Chart == "" {
					assert.Equal(t, url, src.RepoURL, "%s/%s source", c.Name, a.Name())
				}
			}
		}
		for name, p := range c.Projects {
			require.NotEmpty(t, p.Spec.SourceRepos, "%s: AppProject %s", c.Name, name)
			assert.Equal(t, url, p.Spec.SourceRepos[0], "%s: AppProject %s lists this repository first", c.Name, name)
		}
		for _, a := range c.AllApps() {
			for _, o := range a.Objects {
				js, _ := o.MarshalJSON()
				assert.NotContains(t, string(js), `"REPOSITORY"`, "%s/%s: %s %s keeps the placeholder", c.Name, a.Name(), o.GetKind(), o.GetName())
			}
		}
	}
}

// TestExceptionsArePreciseAndUsed: every entry of policy/exceptions.yaml says why, names what it
// excuses precisely (an object's kind, or an upstream chart's Application and a finding), and
// excuses at least one finding in some cluster: an entry nothing needs any more must go.
func TestExceptionsArePreciseAndUsed(t *testing.T) {
	data, err := os.ReadFile("../policy/exceptions.yaml")
	require.NoError(t, err)
	var file struct {
		Exceptions []map[string]any `json:"exceptions"`
	}
	require.NoError(t, yaml.Unmarshal(data, &file))
	r := verified(t)
	for i, e := range file.Exceptions {
		desc := fmt.Sprintf("exception %d (%v %v %v %v %v)", i, e["policy"], e["application"], e["kind"], e["namespace"], e["name"])
		assert.NotEmpty(t, e["reason"], "%s has no reason", desc)
		if e["policy"] == "images" || e["policy"] == "backups" {
			continue // read by policy/images.rego and TestDataBackups themselves
		}
		precise := e["kind"] != nil && (e["name"] != nil || e["application"] != nil) || e["application"] != nil && e["finding"] != nil
		assert.True(t, precise, "%s must name an object (kind and name) or an upstream chart's findings (application with kind or finding)", desc)
		assert.Positive(t, r.Excused[i], "%s excuses no finding in any cluster: remove it", desc)
	}
}

// TestCRDsFromTheirInstallers: the CRDs validated against are those the Applications install
// (one source): no CRD file is kept in this repository beside the vendored charts, every CRD is
// installed by one Application only, and a CRD that declares the version of its project
// (app.kubernetes.io/version, operator.prometheus.io/version) declares the appVersion of the
// chart that installs it.
func TestCRDsFromTheirInstallers(t *testing.T) {
	out, err := exec.Command("git", "-C", "..", "ls-files", "*.yaml", "*.yml").Output()
	require.NoError(t, err)
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "policytest/testdata/") {
			continue
		}
		data, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			continue
		}
		assert.NotContains(t, string(data), "\nkind: CustomResourceDefinition", "%s: a CRD kept beside its installer; the CRDs come from the chart or manifest that installs them", f)
	}
	for _, c := range repo(t).Clusters {
		installer := map[string]string{}
		for _, a := range c.AllApps() {
			var chart *render.Chart
			if a.Chart != nil {
				chart, err = render.LoadChart(render.ChartFile(filepath.Join("charts"), a.Chart.Chart, a.Chart.TargetRevision))
				require.NoError(t, err)
			}
			for _, o := range a.Objects {
				if o.GetKind() != "CustomResourceDefinition" {
					continue
				}
				if other, ok := installer[o.GetName()]; ok {
					t.Errorf("%s: CRD %s is installed by both %s and %s", c.Name, o.GetName(), other, a.Name())
				}
				installer[o.GetName()] = a.Name()
				for _, key := range []string{"app.kubernetes.io/version", "operator.prometheus.io/version"} {
					v := o.GetLabels()[key] + o.GetAnnotations()[key]
					if v != "" && chart != nil {
						assert.Equal(t, strings.TrimPrefix(chart.AppVersion, "v"), strings.TrimPrefix(v, "v"),
							"%s/%s: CRD %s says %s %s, but chart %s %s installs appVersion %s", c.Name, a.Name(), o.GetName(), key, v, chart.Name, chart.Version, chart.AppVersion)
					}
				}
			}
		}
		names := make([]string, 0, len(installer))
		for n := range installer {
			names = append(names, n)
		}
		sort.Strings(names)
		assert.NotEmpty(t, names, "%s installs CRDs", c.Name)
	}
}
