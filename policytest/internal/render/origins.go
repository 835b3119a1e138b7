package render

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/cloudlab/platform/tools/rendered"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Origin is where kustomize read an object from, relative to the repository (tools/rendered).
type Origin = rendered.Origin

// originAnnotation is what kustomize's buildMetadata [originAnnotations] adds to every object.
const originAnnotation = "config.kubernetes.io/origin"

// KustomizeOrigins builds one kustomization directory as Kustomize does, and says where each
// object comes from: it builds with buildMetadata [originAnnotations] set on the top
// kustomization (as if it were written there; the files are not changed), reads each object's
// config.kubernetes.io/origin with its paths made relative to repoRoot, and removes the
// annotation again, so the objects are exactly what Kustomize builds.
func KustomizeOrigins(opts *krusty.Options, repoRoot, dir string) ([]*unstructured.Unstructured, []Origin, error) {
	// kustomize reads the kustomization by its absolute path; origins are relative to dir.
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	absRoot, err := filepath.Abs(repoRoot)
	if err != nil {
		return nil, nil, err
	}
	objs, err := kustomize(opts, originFS{FileSystem: filesys.MakeFsOnDisk(), dir: absDir}, dir)
	if err != nil {
		return nil, nil, err
	}
	origins := make([]Origin, len(objs))
	for i, o := range objs {
		anns := o.GetAnnotations()
		raw, ok := anns[originAnnotation]
		if !ok {
			return nil, nil, fmt.Errorf("%s %s: kustomize gave no %s", o.GetKind(), o.GetName(), originAnnotation)
		}
		var origin struct {
			Path         string `json:"path"`
			ConfiguredIn string `json:"configuredIn"`
			ConfiguredBy struct {
				Kind string `json:"kind"`
			} `json:"configuredBy"`
		}
		if err := yaml.Unmarshal([]byte(raw), &origin); err != nil {
			return nil, nil, fmt.Errorf("%s %s: %s: %w", o.GetKind(), o.GetName(), originAnnotation, err)
		}
		rel := func(p string) (string, error) {
			if p == "" {
				return "", nil
			}
			r, err := filepath.Rel(absRoot, filepath.Join(absDir, p))
			return filepath.ToSlash(r), err
		}
		if origins[i].Path, err = rel(origin.Path); err != nil {
			return nil, nil, err
		}
		if origins[i].ConfiguredIn, err = rel(origin.ConfiguredIn); err != nil {
			return nil, nil, err
		}
		origins[i].Generator = origin.ConfiguredBy.Kind
		delete(anns, originAnnotation)
		if len(anns) == 0 {
			unstructured.RemoveNestedField(o.Object, "metadata", "annotations")
		} else {
			o.SetAnnotations(anns)
		}
	}
	return objs, origins, nil
}

// originFS is the disk, except that the kustomization file of dir reads as if it set
// buildMetadata [originAnnotations].
type originFS struct {
	filesys.FileSystem
	dir string
}

func (f originFS) ReadFile(path string) ([]byte, error) {
	data, err := f.FileSystem.ReadFile(path)
	abs, _ := filepath.Abs(path)
	if err != nil || filepath.Dir(abs) != f.dir || !slices.Contains(konfig.RecognizedKustomizationFileNames(), filepath.Base(path)) {
		return data, err
	}
	if declared.Match(data) {
		// Not the case in this repository; a second key would be invalid YAML.
		return nil, fmt.Errorf("%s sets buildMetadata: the render adds originAnnotations itself", path)
	}
	return append(append(data[:len(data):len(data)], '\n'), "buildMetadata: [originAnnotations]\n"...), nil
}

// declared matches a kustomization that sets buildMetadata itself.
var declared = regexp.MustCompile(`(?m)^buildMetadata:`)
