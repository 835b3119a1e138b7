package render

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// IndexFile is what a render writes next to the objects of one cluster (rendered/<cluster>/):
// the Applications with their waves and files, the API versions the charts were rendered with,
// and the findings of the render. make verify renders each cluster once and every later stage
// (go test, make simulate, make diff) reads this folder.
const IndexFile = "index.json"

// ObjectsFile holds the same objects as the YAML files, as JSON by Application (the root's
// bootstrap first): what LoadRendered reads, since decoding JSON costs a fraction of YAML.
const ObjectsFile = "objects.json"

// Index is the content of IndexFile.
type Index struct {
	Cluster      string       `json:"cluster"`
	RepoURL      string       `json:"repoURL"`
	APIVersions  []string     `json:"apiVersions"`
	Applications []IndexEntry `json:"applications"` // the root first, then by wave and name
	Findings     []Finding    `json:"findings"`
}

// IndexEntry is one Application's file.
type IndexEntry struct {
	Name    string `json:"name"`
	Wave    int    `json:"wave"`
	File    string `json:"file"`    // <name>.yaml, relative to the cluster's folder
	Objects int    `json:"objects"` // how many objects the file holds
	Chart   string `json:"chart,omitempty"`
}

// Write puts a rendered cluster into dir (emptied first): one YAML file per Application (the
// root's file starts with its bootstrap objects), api-versions.txt and index.json.
func Write(c *Cluster, dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	idx := Index{Cluster: c.Name, RepoURL: c.RepoURL, APIVersions: c.APIVersions, Findings: c.Findings}
	byApp := map[string][]json.RawMessage{}
	for _, app := range c.AllApps() {
		var b strings.Builder
		fmt.Fprintf(&b, "# Application %s (wave %d) of cluster %s\n", app.Name(), app.Wave, c.Name)
		objs := app.Objects
		if app == c.Root {
			fmt.Fprintf(&b, "# First its bootstrap (kubectl apply -k %s), then what it syncs.\n", BootstrapPath(c.Name))
			objs = append(append(objs[:0:0], c.Bootstrap...), objs...)
		}
		e := IndexEntry{Name: app.Name(), Wave: app.Wave, File: app.Name() + ".yaml", Objects: len(objs)}
		if app.Chart != nil {
			e.Chart = app.Chart.Chart + " " + app.Chart.TargetRevision
			fmt.Fprintf(&b, "# Upstream chart %s %s from %s (vendored: %s), rendered with:\n", app.Chart.Chart, app.Chart.TargetRevision, app.Chart.RepoURL, ChartFile(ChartDir, app.Chart.Chart, app.Chart.TargetRevision))
			for _, vf := range app.ValueFiles {
				fmt.Fprintf(&b, "#   values: %s\n", vf)
			}
		}
		for _, o := range objs {
			js, err := o.MarshalJSON()
			if err != nil {
				return err
			}
			byApp[app.Name()] = append(byApp[app.Name()], js)
			y, err := yaml.JSONToYAML(js)
			if err != nil {
				return err
			}
			b.WriteString("---\n")
			b.Write(y)
		}
		if err := os.WriteFile(filepath.Join(dir, e.File), []byte(b.String()), 0o644); err != nil {
			return err
		}
		idx.Applications = append(idx.Applications, e)
	}
	all, err := json.Marshal(byApp)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ObjectsFile), all, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "api-versions.txt"), []byte(strings.Join(c.APIVersions, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, IndexFile), append(js, '\n'), 0o644)
}

// ReadIndex reads dir/index.json.
func ReadIndex(dir string) (*Index, error) {
	data, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		return nil, err
	}
	idx := &Index{}
	if err := json.Unmarshal(data, idx); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, IndexFile), err)
	}
	return idx, nil
}

// LoadRendered reads a cluster that Write put into dir, instead of rendering it again: the
// Applications are read from the repository as LoadCluster reads them, their objects and the
// render's findings from dir. It is what make verify's go test does after the render stage.
func LoadRendered(opts Options, dir, name string) (*Cluster, error) {
	idx, err := ReadIndex(dir)
	if err != nil {
		return nil, err
	}
	if idx.Cluster != name {
		return nil, fmt.Errorf("%s holds cluster %q, not %q", dir, idx.Cluster, name)
	}
	data, err := os.ReadFile(filepath.Join(dir, ObjectsFile))
	if err != nil {
		return nil, err
	}
	var byApp map[string][]json.RawMessage
	if err := json.Unmarshal(data, &byApp); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ObjectsFile), err)
	}
	c, _, err := bootstrap(opts, name)
	if err != nil {
		return nil, err
	}
	objects := func(app string) error {
		var objs []*unstructured.Unstructured
		for _, raw := range byApp[app] {
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(raw); err != nil {
				return fmt.Errorf("%s: %s: %w", filepath.Join(dir, ObjectsFile), app, err)
			}
			objs = append(objs, u)
		}
		a := c.Root
		if app != RootName {
			for _, child := range c.Apps {
				if child.Name() == app {
					a = child
				}
			}
		} else {
			objs = objs[len(c.Bootstrap):]
		}
		a.Objects = objs
		return nil
	}
	if err := objects(RootName); err != nil {
		return nil, err
	}
	c.children(opts)
	for _, a := range c.Apps {
		if !indexed(idx, a.Name()) {
			return nil, fmt.Errorf("%s has no file for Application %s: render again", dir, a.Name())
		}
		if err := objects(a.Name()); err != nil {
			return nil, err
		}
	}
	c.Findings = idx.Findings // the render's own: describe found the same, and more would repeat them
	c.APIVersions = idx.APIVersions
	c.sortApps()
	return c, nil
}

// indexed reports whether the index lists an Application.
func indexed(idx *Index, app string) bool {
	for _, e := range idx.Applications {
		if e.Name == app {
			return true
		}
	}
	return false
}
