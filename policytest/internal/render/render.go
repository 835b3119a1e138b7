// Package render builds a cluster of this repository the way Argo CD builds it: it reads the
// cluster's root Application (typed, with Argo CD's own API package), builds the root's source
// to get the child Applications and AppProjects, then builds every child Application's source.
//
// Kustomize sources are built in-process with the options Argo CD is configured with
// (platform/argocd/values.yaml: kustomize.buildOptions), Helm inflation included. Upstream Helm
// chart sources cannot be fetched offline: for those the pin and the values files are checked.
package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// RepoURL is the one repository every Application of ours syncs from.
const RepoURL = "https://github.com/cloudlab/platform.git"

// RootName is the root Application of every cluster (clusters/<env>/root-app.yaml).
const RootName = "root"

// Options say where the repository and the tools are.
type Options struct {
	RepoRoot    string // the checkout (or a fixture repository under testdata)
	Helm        string // path of the helm binary kustomize runs for helmCharts
	KubeVersion string // what Argo CD passes as --helm-kube-version (the cluster's version)
}

// App is one Argo CD Application and what it deploys.
type App struct {
	Application *v1alpha1.Application
	Wave        int
	// Objects holds what the kustomize source renders (nil for an upstream chart).
	Objects []*unstructured.Unstructured
	// Chart is the upstream Helm chart source, if the Application has one.
	Chart *v1alpha1.ApplicationSource
	// ValueFiles are the repository files the chart source's values come from.
	ValueFiles []string
}

// Name of the Application.
func (a *App) Name() string { return a.Application.Name }

// Cluster is everything one cluster's root Application leads to.
type Cluster struct {
	Name      string
	Bootstrap []*unstructured.Unstructured // clusters/<env>/root-app.yaml as written
	Root      *App                         // its objects are the child Applications and AppProjects
	Apps      []*App                       // the children, by wave then name
	Projects  map[string]*v1alpha1.AppProject
	Findings  []Finding // what could not be built or read, as findings (never a panic)
}

// AllApps is the root followed by its children.
func (c *Cluster) AllApps() []*App { return append([]*App{c.Root}, c.Apps...) }

// Finding is one thing wrong, in the form `<cluster>/<application>: <Kind>/<namespace>/<name>: <message>`.
// Namespace is "-" for a cluster-scoped object; Kind and Name are "-" for a finding about the
// Application itself.
type Finding struct {
	Cluster, App, Kind, Namespace, Name, Message string
}

func (f Finding) String() string {
	or := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	return fmt.Sprintf("%s/%s: %s/%s/%s: %s", f.Cluster, f.App, or(f.Kind), or(f.Namespace), or(f.Name), f.Message)
}

// ObjectFinding is a finding about a rendered object.
func ObjectFinding(cluster, app string, o *unstructured.Unstructured, msg string) Finding {
	return Finding{Cluster: cluster, App: app, Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName(), Message: msg}
}

// AppFinding is a finding about an Application itself.
func AppFinding(cluster string, app *v1alpha1.Application, msg string) Finding {
	return Finding{Cluster: cluster, App: app.Name, Kind: "Application", Namespace: app.Namespace, Name: app.Name, Message: msg}
}

// Clusters lists the cluster folders of a repository (clusters/*/root-app.yaml).
func Clusters(repoRoot string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(repoRoot, "clusters", "*", "root-app.yaml"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range matches {
		names = append(names, filepath.Base(filepath.Dir(m)))
	}
	sort.Strings(names)
	return names, nil
}

// LoadCluster builds one cluster. An error means the repository itself could not be read
// (no root Application); everything else wrong becomes a Finding.
func LoadCluster(opts Options, name string) (*Cluster, error) {
	kopts, err := kustomizeOptions(opts)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Name: name, Projects: map[string]*v1alpha1.AppProject{}}

	rootFile := filepath.Join(opts.RepoRoot, "clusters", name, "root-app.yaml")
	data, err := os.ReadFile(rootFile)
	if err != nil {
		return nil, err
	}
	c.Bootstrap, err = DecodeObjects(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rootFile, err)
	}
	for _, o := range c.Bootstrap {
		switch o.GetKind() {
		case "Application":
			if o.GetName() == RootName {
				app, err := toApplication(o)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", rootFile, err)
				}
				c.Root = &App{Application: app}
			}
		case "AppProject":
			p, err := toProject(o)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", rootFile, err)
			}
			c.Projects[p.Name] = p
		}
	}
	if c.Root == nil {
		return nil, fmt.Errorf("%s: no Application named %q", rootFile, RootName)
	}
	c.buildApp(opts, kopts, c.Root)

	for _, o := range c.Root.Objects {
		switch o.GetKind() {
		case "Application":
			app, err := toApplication(o)
			if err != nil {
				c.Findings = append(c.Findings, ObjectFinding(name, RootName, o, "cannot be read as an Argo CD Application: "+err.Error()))
				continue
			}
			child := &App{Application: app}
			c.Apps = append(c.Apps, child)
		case "AppProject":
			p, err := toProject(o)
			if err != nil {
				c.Findings = append(c.Findings, ObjectFinding(name, RootName, o, "cannot be read as an Argo CD AppProject: "+err.Error()))
				continue
			}
			c.Projects[p.Name] = p
		}
	}
	for _, child := range c.Apps {
		c.buildApp(opts, kopts, child)
	}
	sort.SliceStable(c.Apps, func(i, j int) bool {
		if c.Apps[i].Wave != c.Apps[j].Wave {
			return c.Apps[i].Wave < c.Apps[j].Wave
		}
		return c.Apps[i].Name() < c.Apps[j].Name()
	})
	return c, nil
}

var exactVersion = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+$`)

// buildApp fills in the wave and what the Application's sources deploy.
func (c *Cluster) buildApp(opts Options, kopts *krusty.Options, a *App) {
	app := a.Application
	fail := func(format string, args ...any) {
		c.Findings = append(c.Findings, AppFinding(c.Name, app, fmt.Sprintf(format, args...)))
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
			if !exactVersion.MatchString(src.TargetRevision) {
				fail("chart %s targetRevision %q is not an exact version: pin X.Y.Z", src.Chart, src.TargetRevision)
			}
			if src.Helm == nil || len(src.Helm.ValueFiles) == 0 {
				fail("chart %s has no values file from this repository: add helm.valueFiles ($values/...)", src.Chart)
				continue
			}
			for _, vf := range src.Helm.ValueFiles {
				rel, ok := strings.CutPrefix(vf, "$values/")
				if !ok {
					fail("values file %q of chart %s is not read from this repository: use $values/<path>", vf, src.Chart)
					continue
				}
				a.ValueFiles = append(a.ValueFiles, rel)
				if err := checkValuesFile(filepath.Join(opts.RepoRoot, rel)); err != nil {
					fail("values file %s of chart %s: %v", rel, src.Chart, err)
				}
			}
		case src.Ref != "":
			if src.RepoURL != RepoURL {
				fail("values source %q must be this repository (%s)", src.RepoURL, RepoURL)
			}
		default:
			if src.RepoURL != RepoURL {
				fail("source repoURL %q is not this repository (%s)", src.RepoURL, RepoURL)
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
			objs, err := Kustomize(kopts, dir)
			if err != nil {
				// Paths relative to the repository, so a message reads the same in every clone.
				msg := strings.ReplaceAll(err.Error(), filepath.Clean(opts.RepoRoot)+string(filepath.Separator), "")
				fail("source path %s does not build: %s", src.Path, msg)
				continue
			}
			a.Objects = append(a.Objects, objs...)
		}
	}
}

func checkValuesFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return errors.New("does not exist")
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("does not parse: %v", err)
	}
	if _, ok := v.(map[string]any); !ok && v != nil {
		return errors.New("is not a mapping of values")
	}
	return nil
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
	k := krusty.MakeKustomizer(opts)
	resMap, err := k.Run(filesys.MakeFsOnDisk(), dir)
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

// DecodeObjects reads a multi-document YAML stream.
func DecodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
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
