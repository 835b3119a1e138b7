package render

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"
)

// ChartDir is where the vendored upstream charts are, relative to the repository root: one
// `<chart>-<version>.tgz` per chart an Application deploys, with PROVENANCE.md, SHA256SUMS and
// the licences (docs/decisions/0030-vendored-charts.md).
const ChartDir = "policytest/charts"

// Chart is one vendored chart package: what `helm template` renders, and the values it accepts.
type Chart struct {
	Name, Version string
	AppVersion    string // the version of what the chart deploys (Chart.yaml appVersion)
	File          string // the .tgz
	// Defaults are the values the chart starts from: its values.yaml with each dependency's
	// values.yaml under the dependency's name or alias (the parent's section wins), as Helm
	// coalesces them; "global" holds every chart's globals.
	Defaults map[string]any
	// Known are the value keys the chart has: Defaults, the properties its values.schema.json
	// files declare (which helm template enforces), and the .Values paths its templates read.
	// A node with children is checked key by key; a leaf accepts anything below it.
	Known map[string]any
}

// ChartFile is the vendored package of chart name at version in dir.
func ChartFile(dir, name, version string) string {
	return filepath.Join(dir, name+"-"+version+".tgz")
}

var charts sync.Map // file -> *Chart: a package is read once per process (the clusters share it)

// LoadChart reads a vendored chart package (once per process; the result is shared and must not
// be modified). The error says which file is missing or unreadable.
func LoadChart(file string) (*Chart, error) {
	if c, ok := charts.Load(file); ok {
		return c.(*Chart), nil
	}
	c, err := loadChart(file)
	if err != nil {
		return nil, err
	}
	charts.Store(file, c)
	return c, nil
}

func loadChart(file string) (*Chart, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	files := map[string][]byte{} // Chart.yaml, values.yaml, values.schema.json of every (sub)chart
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		base := path.Base(h.Name)
		if base == "Chart.yaml" || base == "values.yaml" || base == "values.schema.json" || strings.Contains(h.Name, "/templates/") {
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			files[h.Name] = data
		}
	}
	var root string
	for name := range files {
		if strings.Count(name, "/") == 1 && path.Base(name) == "Chart.yaml" {
			root = path.Dir(name)
		}
	}
	if root == "" {
		return nil, fmt.Errorf("%s: no Chart.yaml at the top of the package", file)
	}
	c := &Chart{File: file}
	meta, defaults, err := chartValues(files, root)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	c.Name, c.Version, c.AppVersion, c.Defaults = meta.Name, meta.Version, meta.AppVersion, defaults
	c.Known, err = knownValues(files, root, defaults)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

type chartMeta struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	AppVersion   string `json:"appVersion"`
	Dependencies []struct {
		Name  string `json:"name"`
		Alias string `json:"alias"`
	} `json:"dependencies"`
}

// chartValues coalesces the values of the chart at dir with those of its dependencies
// (dir/charts/<dependency>/), the way Helm does before rendering.
func chartValues(files map[string][]byte, dir string) (chartMeta, map[string]any, error) {
	var meta chartMeta
	if err := yaml.Unmarshal(files[dir+"/Chart.yaml"], &meta); err != nil {
		return meta, nil, fmt.Errorf("%s/Chart.yaml: %w", dir, err)
	}
	values := map[string]any{}
	if err := yaml.Unmarshal(files[dir+"/values.yaml"], &values); err != nil {
		return meta, nil, fmt.Errorf("%s/values.yaml: %w", dir, err)
	}
	if values == nil {
		values = map[string]any{}
	}
	globals, _ := values["global"].(map[string]any)
	var subdirs []string
	for name := range files {
		rest, ok := strings.CutPrefix(name, dir+"/charts/")
		if ok && strings.Count(rest, "/") == 1 && path.Base(rest) == "Chart.yaml" {
			subdirs = append(subdirs, dir+"/charts/"+path.Dir(rest))
		}
	}
	sort.Strings(subdirs)
	for _, sub := range subdirs {
		subMeta, subValues, err := chartValues(files, sub)
		if err != nil {
			return meta, nil, err
		}
		key := subMeta.Name
		for _, d := range meta.Dependencies {
			if d.Name == subMeta.Name && d.Alias != "" {
				key = d.Alias
			}
		}
		if g, ok := subValues["global"].(map[string]any); ok {
			globals = MergeValues(g, globals)
			delete(subValues, "global")
		}
		own, _ := values[key].(map[string]any)
		values[key] = MergeValues(subValues, own)
	}
	if globals != nil {
		values["global"] = globals
	}
	return meta, values, nil
}

// MergeValues merges b over a like Helm merges values files: maps deeply, everything else
// (lists included) replaced. Neither argument is modified.
func MergeValues(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = MergeValues(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}
