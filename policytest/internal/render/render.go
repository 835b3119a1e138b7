// Package render builds a cluster of this repository the way Argo CD builds it: it reads the
// cluster's root Application (typed, with Argo CD's own API package), builds the root's source
// to get the child Applications and AppProjects, then builds every child Application's source.
//
// Kustomize sources are built in-process with the options Argo CD is configured with
// (platform/argocd/values.yaml: kustomize.buildOptions), Helm inflation included. Upstream Helm
// chart sources are rendered from the vendored packages in policytest/charts with helm, the way
// Argo CD's repo server renders them (helm.go).
package render

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"github.com/cloudlab/platform/tools/rendered"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// RootName is the root Application of every cluster (apps/root, built by clusters/<env>/bootstrap).
const RootName = rendered.RootName

// Options say where the repository and the tools are.
type Options struct {
	RepoRoot    string // the checkout (or a fixture repository under testdata)
	ChartDir    string // the vendored charts (default: <RepoRoot>/policytest/charts)
	Helm        string // path of the helm binary kustomize runs for helmCharts
	KubeVersion string // what Argo CD passes to helm as the cluster's version, e.g. 1.32.0
	// APIVersions is a first guess of the API versions of the CRDs the cluster installs (e.g. the
	// previous render's); right or wrong, the result is the same, a right guess saves a render.
	APIVersions []string
	Apps        []string // render only these child Applications (all when empty)
	// TemplateCache, when set, is a folder that keeps `helm template`'s output of the chart
	// Applications by a key over all of its inputs (TemplateKey); "" renders every time.
	TemplateCache string
}

// App is one Argo CD Application and what it deploys.
type App struct {
	Application *v1alpha1.Application
	Wave        int
	// Objects holds what the kustomize source renders (nil for an upstream chart).
	Objects []*unstructured.Unstructured
	// Origins says where kustomize read each of Objects (parallel to it; nil for a chart's).
	Origins []Origin
	// Chart is the upstream Helm chart source, if the Application has one.
	Chart *v1alpha1.ApplicationSource
	// ValueFiles are the repository files the chart source's values come from.
	ValueFiles []string

	paths    []string // repository paths to build with kustomize
	release  *Release // the chart to render, when it can be
	chartErr error    // why the chart did not render
}

// Name of the Application.
func (a *App) Name() string { return a.Application.Name }

// Cluster is everything one cluster's root Application leads to.
type Cluster struct {
	Name      string
	Bootstrap []*unstructured.Unstructured // what clusters/<env>/bootstrap builds: the root and its project
	// BootstrapOrigins says where kustomize read each of Bootstrap (parallel to it).
	BootstrapOrigins []Origin
	Root             *App   // its objects are the child Applications and AppProjects
	Apps             []*App // the children, by wave then name
	Projects         map[string]*v1alpha1.AppProject
	Findings         []Finding // what could not be built or read, as findings (never a panic)
	// RepoURL is this repository, as the root Application syncs it: every other source of ours
	// must name the same.
	RepoURL string
	// APIVersions are the CRD API versions the charts were rendered with (group/version and
	// group/version/Kind of every CRD the cluster's Applications install).
	APIVersions []string
	// Templates says how the chart Applications' `helm template` runs went (the last render).
	Templates TemplateStats

	repoRoot string
}

// AllApps is the root followed by its children.
func (c *Cluster) AllApps() []*App { return append([]*App{c.Root}, c.Apps...) }

// Finding is one thing wrong, `<cluster>/<application>: <Kind>/<namespace>/<name>: <check>: <message>`
// (the format of rendered/<env>/index.json is shared with tools/simulate: tools/rendered).
type Finding = rendered.Finding

// CheckRender is the check of the findings the render itself makes: pins, values files and
// their keys, source paths that do not build, charts that do not template.
const CheckRender = "render"

// ObjectFinding is a finding of check about a rendered object.
func ObjectFinding(cluster, app string, o *unstructured.Unstructured, check, msg string) Finding {
	return Finding{Cluster: cluster, App: app, Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName(), Check: check, Message: msg}
}

// AppFinding is a finding of check about an Application itself.
func AppFinding(cluster string, app *v1alpha1.Application, check, msg string) Finding {
	return Finding{Cluster: cluster, App: app.Name, Kind: "Application", Namespace: app.Namespace, Name: app.Name, Check: check, Message: msg}
}

func (o Options) chartDir() string {
	if o.ChartDir != "" {
		return o.ChartDir
	}
	return filepath.Join(o.RepoRoot, ChartDir)
}

// Clusters lists the cluster folders of a repository (clusters/*/bootstrap/kustomization.yaml).
func Clusters(repoRoot string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(repoRoot, "clusters", "*", "bootstrap", "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range matches {
		names = append(names, filepath.Base(filepath.Dir(filepath.Dir(m))))
	}
	sort.Strings(names)
	return names, nil
}

// BootstrapPath is the folder a cluster is bootstrapped from (`kubectl apply -k`): it builds the
// AppProject and the Application `root`.
func BootstrapPath(name string) string { return "clusters/" + name + "/bootstrap" }

// LoadCluster builds one cluster. An error means the repository itself could not be read
// (no root Application); everything else wrong becomes a Finding.
//
// The repository-path Applications are built in-process with kustomize while the upstream-chart
// Applications render concurrently with helm (one process per chart). Charts see the cluster's
// API versions as Argo CD passes them: those of the CRDs that the cluster's Applications
// install. Those CRDs are themselves rendered, so the charts are rendered with
// opts.APIVersions first (a guess: e.g. the previous render's) and again with the versions their
// output actually installs, until both agree.
func LoadCluster(opts Options, name string) (*Cluster, error) {
	c, kopts, err := bootstrap(opts, name)
	if err != nil {
		return nil, err
	}
	c.build(kopts, c.Root)
	c.children(opts)

	// Charts render in the background while kustomize builds the rest.
	guess := opts.APIVersions
	charts := c.renderCharts(opts, guess)
	for _, child := range c.Apps {
		c.build(kopts, child)
	}
	c.collect(<-charts)
	if actual := APIVersions(c.objects()); !equal(actual, guess) {
		// The guess was not what the cluster installs: once more with the real API versions.
		c.collect(<-c.renderCharts(opts, actual))
		if again := APIVersions(c.objects()); !equal(again, actual) {
			c.Findings = append(c.Findings, AppFinding(name, c.Root.Application, CheckRender, "the CRDs the charts install change with the API versions they are rendered with: the render does not settle"))
		}
		guess = actual
	}
	c.APIVersions = guess
	c.chartFindings()
	c.defaultNamespaces()
	c.sortApps()
	return c, nil
}

// bootstrap reads a cluster's root: it builds clusters/<name>/bootstrap, which holds the
// AppProject and the Application `root` and nothing else.
func bootstrap(opts Options, name string) (*Cluster, *krusty.Options, error) {
	kopts, err := kustomizeOptions(opts)
	if err != nil {
		return nil, nil, err
	}
	c := &Cluster{Name: name, Projects: map[string]*v1alpha1.AppProject{}, repoRoot: opts.RepoRoot}
	dir := BootstrapPath(name)
	objs, origins, err := KustomizeOrigins(kopts, opts.RepoRoot, filepath.Join(opts.RepoRoot, filepath.FromSlash(dir)))
	if err != nil {
		return nil, nil, fmt.Errorf("%s does not build: %w", dir, err)
	}
	c.Bootstrap, c.BootstrapOrigins = objs, origins
	for _, o := range objs {
		switch o.GetKind() {
		case "Application":
			if o.GetName() == RootName {
				app, err := toApplication(o)
				if err != nil {
					return nil, nil, fmt.Errorf("%s: %w", dir, err)
				}
				c.Root = &App{Application: app}
			}
		case "AppProject":
			p, err := toProject(o)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", dir, err)
			}
			c.Projects[p.Name] = p
		}
	}
	if c.Root == nil {
		return nil, nil, fmt.Errorf("%s: no Application named %q", dir, RootName)
	}
	c.RepoURL = c.Root.Application.Spec.GetSource().RepoURL
	c.describe(opts, c.Root)
	return c, kopts, nil
}

// children reads the child Applications and AppProjects from the root's objects.
func (c *Cluster) children(opts Options) {
	for _, o := range c.Root.Objects {
		switch o.GetKind() {
		case "Application":
			app, err := toApplication(o)
			if err != nil {
				c.Findings = append(c.Findings, ObjectFinding(c.Name, RootName, o, CheckRender, "cannot be read as an Argo CD Application: "+err.Error()))
				continue
			}
			if len(opts.Apps) > 0 && !contains(opts.Apps, app.Name) {
				continue
			}
			c.Apps = append(c.Apps, &App{Application: app})
		case "AppProject":
			p, err := toProject(o)
			if err != nil {
				c.Findings = append(c.Findings, ObjectFinding(c.Name, RootName, o, CheckRender, "cannot be read as an Argo CD AppProject: "+err.Error()))
				continue
			}
			c.Projects[p.Name] = p
		}
	}
	sort.SliceStable(c.Apps, func(i, j int) bool { return c.Apps[i].Name() < c.Apps[j].Name() })
	for _, child := range c.Apps {
		c.describe(opts, child)
	}
}

// sortApps orders the children as Argo CD syncs them: by wave, then name.
func (c *Cluster) sortApps() {
	sort.SliceStable(c.Apps, func(i, j int) bool {
		if c.Apps[i].Wave != c.Apps[j].Wave {
			return c.Apps[i].Wave < c.Apps[j].Wave
		}
		return c.Apps[i].Name() < c.Apps[j].Name()
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// objects is everything the cluster's Applications render.
func (c *Cluster) objects() []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, a := range c.AllApps() {
		out = append(out, a.Objects...)
	}
	return out
}

var exactVersion = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+$`)

// describe reads the wave and the sources of an Application and checks what can be checked
// without building: pins, values files (and their keys, against the vendored chart), paths.
func (c *Cluster) describe(opts Options, a *App) {
	app := a.Application
	fail := func(format string, args ...any) {
		c.Findings = append(c.Findings, AppFinding(c.Name, app, CheckRender, fmt.Sprintf(format, args...)))
	}
	if w, ok := app.Annotations["argocd.argoproj.io/sync-wave"]; ok {
		n, err := strconv.Atoi(w)
		if err != nil {
			fail("sync-wave %q is not a whole number", w)
		}
		a.Wave = n
	}
	for _, src := range app.Spec.GetSources() {
		src := src
		switch {
		case src.Chart != "":
			a.Chart = &src
			c.describeChart(opts, a, fail)
		case src.Ref != "":
			if src.RepoURL != c.RepoURL {
				fail("values source %q must be this repository (%s)", src.RepoURL, c.RepoURL)
			}
		default:
			if src.RepoURL != c.RepoURL {
				fail("source repoURL %q is not this repository (%s)", src.RepoURL, c.RepoURL)
				continue
			}
			if src.TargetRevision != "main" {
				fail("source targetRevision %q: every cluster tracks main (promotion is a change to clusters/<env>/)", src.TargetRevision)
			}
			dir := filepath.Join(opts.RepoRoot, filepath.FromSlash(src.Path))
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				fail("source path %s does not exist", src.Path)
				continue
			}
			a.paths = append(a.paths, src.Path)
		}
	}
}

// describeChart checks an upstream chart source: an exact pin that is vendored, values only
// from files of this repository, and no value key the chart does not have.
func (c *Cluster) describeChart(opts Options, a *App, fail func(string, ...any)) {
	src := a.Chart
	pinned := exactVersion.MatchString(src.TargetRevision)
	if !pinned {
		fail("chart %s targetRevision %q is not an exact version: pin X.Y.Z", src.Chart, src.TargetRevision)
	}
	h := src.Helm
	if h == nil || len(h.ValueFiles) == 0 {
		fail("chart %s has no values file from this repository: add helm.valueFiles ($values/...)", src.Chart)
		return
	}
	if len(h.Parameters) > 0 || len(h.FileParameters) > 0 || h.Values != "" || h.ValuesObject != nil {
		fail("chart %s sets values inline (helm.parameters, values or valuesObject): put them in a values file of this repository", src.Chart)
	}
	files := map[string]map[string]any{}
	ok := true
	for _, vf := range h.ValueFiles {
		rel, isRepo := strings.CutPrefix(vf, "$values/")
		if !isRepo {
			fail("values file %q of chart %s is not read from this repository: use $values/<path>", vf, src.Chart)
			ok = false
			continue
		}
		a.ValueFiles = append(a.ValueFiles, rel)
		values, err := readValuesFile(filepath.Join(opts.RepoRoot, rel))
		if err != nil {
			fail("values file %s of chart %s: %v", rel, src.Chart, err)
			ok = false
			continue
		}
		files[rel] = values
	}
	if !pinned {
		return
	}
	chart, err := LoadChart(ChartFile(opts.chartDir(), src.Chart, src.TargetRevision))
	if err != nil {
		fail("chart %s %s is not vendored in %s: add it with its provenance and checksum (docs/verify.md#bumping-an-upstream-chart)", src.Chart, src.TargetRevision, ChartDir)
		return
	}
	if chart.Name != src.Chart || chart.Version != src.TargetRevision {
		fail("%s holds chart %s %s", ChartFile(ChartDir, src.Chart, src.TargetRevision), chart.Name, chart.Version)
		return
	}
	for _, rel := range a.ValueFiles {
		for _, key := range UnknownValues(files[rel], chart.Known) {
			fail("%s: %s: not a value of %s %s", rel, key, chart.Name, chart.Version)
		}
		for _, problem := range TypedValueProblems(chart.Name, files[rel]) {
			fail("%s: %s", rel, problem)
		}
	}
	if !ok {
		return
	}
	release := Release{Chart: chart, Name: h.ReleaseName, Namespace: a.Application.Spec.Destination.Namespace,
		KubeVersion: opts.KubeVersion, SkipCRDs: h.SkipCrds}
	if release.Name == "" {
		release.Name = a.Name() // Argo CD's default release name
	}
	for _, rel := range a.ValueFiles {
		release.ValueFiles = append(release.ValueFiles, filepath.Join(opts.RepoRoot, rel))
	}
	a.release = &release
}

// build runs kustomize on every repository path of the Application.
func (c *Cluster) build(kopts *krusty.Options, a *App) {
	for _, p := range a.paths {
		objs, origins, err := KustomizeOrigins(kopts, c.repoRoot, filepath.Join(c.repoRoot, filepath.FromSlash(p)))
		if err != nil {
			// Paths relative to the repository, so a message reads the same in every clone.
			msg := strings.ReplaceAll(err.Error(), filepath.Clean(c.repoRoot)+string(filepath.Separator), "")
			c.Findings = append(c.Findings, AppFinding(c.Name, a.Application, CheckRender, fmt.Sprintf("source path %s does not build: %s", p, msg)))
			continue
		}
		a.Objects = append(a.Objects, objs...)
		a.Origins = append(a.Origins, origins...)
	}
}

type chartResult struct {
	app    *App
	objs   []*unstructured.Unstructured
	err    error
	key    string
	cached bool
}

// renderCharts renders every chart Application concurrently (at most GOMAXPROCS helm
// processes) and delivers all results at once.
func (c *Cluster) renderCharts(opts Options, apiVersions []string) <-chan []chartResult {
	done := make(chan []chartResult, 1)
	var apps []*App
	for _, a := range c.Apps {
		if a.release != nil {
			apps = append(apps, a)
		}
	}
	go func() {
		results := make([]chartResult, len(apps))
		sem := make(chan struct{}, runtime.GOMAXPROCS(0))
		var wg sync.WaitGroup
		for i, a := range apps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				r := *a.release
				r.APIVersions = apiVersions
				objs, t, err := TemplateCached(context.Background(), opts.Helm, opts.TemplateCache, r)
				results[i] = chartResult{app: a, objs: objs, err: err, key: t.Key, cached: t.Cached}
			}()
		}
		wg.Wait()
		done <- results
	}()
	return done
}

// collect puts rendered charts into their Applications (replacing an earlier render).
func (c *Cluster) collect(results []chartResult) {
	var keys []string
	c.Templates = TemplateStats{}
	for _, r := range results {
		r.app.Objects = r.objs
		r.app.chartErr = r.err
		c.Templates.Runs++
		if r.cached {
			c.Templates.Cached++
		}
		keys = append(keys, r.key)
	}
	sort.Strings(keys)
	c.Templates.Key = shortHash(strings.Join(keys, "\n"))
}

// chartFindings turns failed chart renders into findings (after the last render).
func (c *Cluster) chartFindings() {
	for _, a := range c.Apps {
		if a.chartErr != nil {
			c.Findings = append(c.Findings, AppFinding(c.Name, a.Application, CheckRender, a.chartErr.Error()))
		}
	}
}

// defaultNamespaces does what Argo CD does when it applies a chart's namespaced object that
// names no namespace: it puts it in the Application's destination namespace.
func (c *Cluster) defaultNamespaces() {
	custom := map[string]bool{} // group/Kind -> namespaced, from the rendered CRDs
	for _, o := range c.objects() {
		if o.GetKind() == "CustomResourceDefinition" {
			group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
			custom[group+"/"+kind] = scope == "Namespaced"
		}
	}
	for _, a := range c.Apps {
		if a.release == nil {
			continue
		}
		for _, o := range a.Objects {
			gk := o.GroupVersionKind().GroupKind()
			namespaced, isCustom := custom[gk.Group+"/"+gk.Kind]
			if !isCustom {
				namespaced = !BuiltinClusterScoped[gk]
			}
			if namespaced && o.GetNamespace() == "" {
				o.SetNamespace(a.Application.Spec.Destination.Namespace)
			}
		}
	}
}

// readValuesFile reads a values file: a YAML mapping (or empty).
func readValuesFile(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errors.New("does not exist")
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("does not parse: %v", err)
	}
	if v == nil {
		return map[string]any{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("is not a mapping of values")
	}
	return m, nil
}

// ArgoBuildOptions reads the kustomize build options Argo CD is configured with.
func ArgoBuildOptions(repoRoot string) (string, error) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "platform", "argocd", "values.yaml"))
	if err != nil {
		return "", err
	}
	var values struct {
		Configs struct {
			CM map[string]string `json:"cm"`
		} `json:"configs"`
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		return "", err
	}
	return values.Configs.CM["kustomize.buildOptions"], nil
}

// kustomizeOptions turns Argo CD's kustomize.buildOptions into krusty options, so the tests build
// with exactly what the repo server runs (`kustomize build <path> <buildOptions>`).
func kustomizeOptions(opts Options) (*krusty.Options, error) {
	buildOptions, err := ArgoBuildOptions(opts.RepoRoot)
	if err != nil {
		return nil, fmt.Errorf("reading kustomize.buildOptions: %w", err)
	}
	k := krusty.MakeDefaultOptions()
	args := strings.Fields(buildOptions)
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--enable-helm":
			k.PluginConfig = types.EnabledPluginConfig(types.BploUseStaticallyLinked)
			k.PluginConfig.HelmConfig.Command = opts.Helm
			k.PluginConfig.HelmConfig.KubeVersion = opts.KubeVersion
		case "--load-restrictor":
			i++
			if i < len(args) && args[i] == "LoadRestrictionsNone" {
				k.LoadRestrictions = types.LoadRestrictionsNone
			}
		default:
			return nil, fmt.Errorf("kustomize.buildOptions: the tests do not know %q; teach render.kustomizeOptions", args[i])
		}
	}
	return k, nil
}

// Kustomize builds one kustomization directory.
func Kustomize(opts *krusty.Options, dir string) ([]*unstructured.Unstructured, error) {
	return kustomize(opts, filesys.MakeFsOnDisk(), dir)
}

func kustomize(opts *krusty.Options, fs filesys.FileSystem, dir string) ([]*unstructured.Unstructured, error) {
	k := krusty.MakeKustomizer(opts)
	resMap, err := k.Run(fs, dir)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, r := range resMap.Resources() {
		// Round-trip through JSON: resource.Map() gives Go ints, unstructured wants int64.
		js, err := r.MarshalJSON()
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// DecodeObjects reads a multi-document YAML stream (the repository's one decoder: tools/rendered).
func DecodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	return rendered.DecodeObjects(data)
}

func toApplication(o *unstructured.Unstructured) (*v1alpha1.Application, error) {
	app := &v1alpha1.Application{}
	return app, decodeStrict(o, app)
}

func toProject(o *unstructured.Unstructured) (*v1alpha1.AppProject, error) {
	p := &v1alpha1.AppProject{}
	return p, decodeStrict(o, p)
}

// decodeStrict reads an object into an Argo CD type, refusing fields the type does not have.
func decodeStrict(o *unstructured.Unstructured, into any) error {
	js, err := o.MarshalJSON()
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}
