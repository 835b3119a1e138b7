// Package layout measures how the repository's folders reach each other: the README's promise
// that every object is a few kustomization references away from its environment's folder.
package layout

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cloudlab/platform/tools/rendered"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// helmGenerator is the generator kind of the objects a kustomization's helmCharts inflates.
const helmGenerator = "HelmChartInflationGenerator"

// Hops is, for every folder that the kustomization in folder from reaches, the fewest
// kustomization references it takes to get there. A reference is an entry of `resources:` or
// `components:` (to a folder, or to a file: its folder) or a chart of `helmCharts:` (the folder
// <helmGlobals.chartHome or charts>/<name>); a file of the same folder costs nothing. Folders
// are relative to repoRoot, with slashes; from itself is 0. Remote resources are not followed.
// An error means a kustomization file could not be read.
func Hops(repoRoot, from string) (map[string]int, error) {
	hops := map[string]int{from: 0}
	for queue := []string{from}; len(queue) > 0; {
		// The least distant first, so each folder's first distance is its least (weights 0 and 1).
		sort.SliceStable(queue, func(i, j int) bool { return hops[queue[i]] < hops[queue[j]] })
		dir := queue[0]
		queue = queue[1:]
		refs, err := references(repoRoot, dir)
		if err != nil {
			return nil, err
		}
		for _, ref := range refs {
			d := hops[dir]
			if ref != dir {
				d++
			}
			if old, seen := hops[ref]; !seen || d < old {
				hops[ref] = d
				queue = append(queue, ref)
			}
		}
	}
	return hops, nil
}

// references are the folders the kustomization in dir references (none when dir holds no
// kustomization: a folder of files, or a chart).
func references(repoRoot, dir string) ([]string, error) {
	var data []byte
	var file string
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		file = path.Join(dir, name)
		var err error
		if data, err = os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(file))); err == nil {
			break
		}
	}
	if data == nil {
		return nil, nil
	}
	var k types.Kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var out []string
	for _, entry := range append(append(k.Resources, k.Components...), k.Bases...) { //nolint:staticcheck // Bases: a kustomization may still use it
		if strings.Contains(entry, "://") || strings.HasPrefix(entry, "github.com/") {
			continue
		}
		target := path.Clean(path.Join(dir, entry))
		info, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(target)))
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, entry, err)
		}
		if !info.IsDir() {
			target = path.Dir(target)
		}
		out = append(out, target)
	}
	home := "charts" // kustomize's default
	if k.HelmGlobals != nil && k.HelmGlobals.ChartHome != "" {
		home = k.HelmGlobals.ChartHome
	}
	for _, c := range k.HelmCharts {
		out = append(out, path.Clean(path.Join(dir, home, c.Name)))
	}
	return out, nil
}

// ObjectHops is how many references from the folder hops was measured from lead to where an
// object is written: the folder of its file, the folder of the kustomization whose generator
// made it, or — for a Helm chart's object — one more, the chart. An error names an origin the
// folder does not reach.
func ObjectHops(hops map[string]int, o rendered.Origin) (int, error) {
	dir, extra := path.Dir(o.Path), 0
	if o.Path == "" {
		dir = path.Dir(o.ConfiguredIn)
		if o.Generator == helmGenerator {
			extra = 1 // the chart the kustomization names
		}
	}
	n, ok := hops[dir]
	if !ok {
		return 0, fmt.Errorf("%+v: folder %s is not reached", o, dir)
	}
	return n + extra, nil
}
