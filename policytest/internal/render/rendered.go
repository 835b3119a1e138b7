package render

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloudlab/platform/tools/rendered"
	"sigs.k8s.io/yaml"
)

// IndexFile, ObjectsFile and the Index are the format of rendered/<cluster>/, shared with
// tools/simulate (module tools/rendered): the Applications with their waves and files, the API
// versions the charts were rendered with, the findings of the render. make verify renders each
// cluster once and every later stage (go test, make simulate, make diff) reads this folder.
const (
	IndexFile   = rendered.IndexFile
	ObjectsFile = rendered.ObjectsFile
)

// Index is the content of IndexFile; IndexEntry one Application's file.
type (
	Index      = rendered.Index
	IndexEntry = rendered.IndexEntry
)

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
	origins := map[string][]Origin{}
	for _, app := range c.AllApps() {
		if app == c.Root {
			origins[app.Name()] = append(append([]Origin{}, c.BootstrapOrigins...), app.Origins...)
		} else if app.Origins != nil {
			origins[app.Name()] = app.Origins
		}
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
	if all, err = json.Marshal(origins); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, rendered.OriginsFile), all, 0o644); err != nil {
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
func ReadIndex(dir string) (*Index, error) { return rendered.ReadIndex(dir) }

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
	byApp, err := rendered.ReadObjects(dir)
	if err != nil {
		return nil, err
	}
	origins, err := rendered.ReadOrigins(dir)
	if err != nil {
		return nil, err
	}
	c, _, err := bootstrap(opts, name)
	if err != nil {
		return nil, err
	}
	objects := func(app string) error {
		objs, from := byApp[app], origins[app]
		a := c.Root
		if app != RootName {
			for _, child := range c.Apps {
				if child.Name() == app {
					a = child
				}
			}
		} else {
			objs = objs[len(c.Bootstrap):]
			if len(from) >= len(c.Bootstrap) {
				from = from[len(c.Bootstrap):]
			}
		}
		a.Objects = objs
		if len(from) == len(objs) {
			a.Origins = from
		}
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
