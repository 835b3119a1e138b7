// Package rendered is the format of a rendered cluster, rendered/<cluster>/: one YAML file per
// Application for people to read, and for programs IndexFile (which Applications, their sync
// waves, the render's findings) and ObjectsFile (every object, by Application). The render
// (policytest/cmd/render) writes it; go test, make simulate and make diff read it.
package rendered

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// IndexFile is the index of a rendered cluster (Index, as JSON).
const IndexFile = "index.json"

// ObjectsFile holds the objects of the YAML files as one JSON object: Application name → the
// list of its objects (the root's bootstrap objects first). Decoding JSON costs a fraction of YAML.
const ObjectsFile = "objects.json"

// RootName is the root Application of every cluster (clusters/<env>/bootstrap): it syncs the
// AppProjects and the child Applications, so it is applied after all of them exist in Argo CD.
const RootName = "root"

// Index is the content of IndexFile.
type Index struct {
	Cluster      string       `json:"cluster"`
	RepoURL      string       `json:"repoURL"`
	APIVersions  []string     `json:"apiVersions"`  // what the charts were rendered with (helm --api-versions)
	Applications []IndexEntry `json:"applications"` // the root first, then by wave and name
	Findings     []Finding    `json:"findings"`
}

// IndexEntry is one Application's file.
type IndexEntry struct {
	Name    string `json:"name"`
	Wave    int    `json:"wave"`    // argocd.argoproj.io/sync-wave (0 when unset)
	File    string `json:"file"`    // <name>.yaml, relative to the cluster's folder
	Objects int    `json:"objects"` // how many objects the file holds
	Chart   string `json:"chart,omitempty"`
}

// Finding is one thing wrong, in the form the README promises:
// `<cluster>/<application>: <Kind>/<namespace>/<name>: <check>: <message>`.
// Namespace is "-" for a cluster-scoped object. Check names what found it: a policy's file
// (policy/<check>.rego) or a Go check ("render", "argo-structure", "quota", "schema";
// docs/verify.md lists them with their stage).
type Finding struct {
	Cluster   string `json:"cluster"`
	App       string `json:"app"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Check     string `json:"check"`
	Message   string `json:"message"`
}

func (f Finding) String() string {
	or := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	return fmt.Sprintf("%s/%s: %s/%s/%s: %s: %s", f.Cluster, f.App, or(f.Kind), or(f.Namespace), or(f.Name), or(f.Check), f.Message)
}

// ReadIndex reads dir/IndexFile.
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

// ReadObjects reads dir/ObjectsFile: Application name → its objects, in the files' order.
func ReadObjects(dir string) (map[string][]*unstructured.Unstructured, error) {
	path := filepath.Join(dir, ObjectsFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var byApp map[string][]json.RawMessage
	if err := json.Unmarshal(data, &byApp); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := map[string][]*unstructured.Unstructured{}
	for app, raws := range byApp {
		for _, raw := range raws {
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(raw); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", path, app, err)
			}
			out[app] = append(out[app], u)
		}
	}
	return out, nil
}

// App is one Application of a rendered cluster with its objects.
type App struct {
	IndexEntry
	Objects []*unstructured.Unstructured
}

// SyncOrder reads a rendered cluster in the order Argo CD syncs it: by sync wave, then name;
// the root (its AppProjects and Applications, after its bootstrap objects) last. An error names
// the file that is missing or unreadable (run make render).
func SyncOrder(dir string) ([]App, error) {
	idx, err := ReadIndex(dir)
	if err != nil {
		return nil, fmt.Errorf("nothing rendered in %s (run make render): %w", dir, err)
	}
	objs, err := ReadObjects(dir)
	if err != nil {
		return nil, err
	}
	var apps []App
	for _, e := range idx.Applications {
		if _, ok := objs[e.Name]; !ok && e.Objects > 0 {
			return nil, fmt.Errorf("%s lists %s, which %s does not hold: render again", filepath.Join(dir, IndexFile), e.Name, ObjectsFile)
		}
		apps = append(apps, App{IndexEntry: e, Objects: objs[e.Name]})
	}
	sort.SliceStable(apps, func(i, j int) bool {
		a, b := apps[i], apps[j]
		if (a.Name == RootName) != (b.Name == RootName) {
			return b.Name == RootName
		}
		if a.Wave != b.Wave {
			return a.Wave < b.Wave
		}
		return a.Name < b.Name
	})
	return apps, nil
}

// OriginsFile holds, parallel to ObjectsFile, where kustomize read each object of an
// Application built from a repository path (Application name → one Origin per object, in the
// same order; none for an upstream chart's objects).
const OriginsFile = "origins.json"

// Origin is kustomize's config.kubernetes.io/origin of an object, with paths relative to the
// repository root: the file a resource was read from, or the kustomization whose generator made
// it (a Helm chart's objects: Generator HelmChartInflationGenerator; a ConfigMapGenerator's).
type Origin struct {
	Path         string `json:"path,omitempty"`
	ConfiguredIn string `json:"configuredIn,omitempty"`
	Generator    string `json:"generator,omitempty"`
}

// ReadOrigins reads dir/OriginsFile; an empty map when the render wrote none.
func ReadOrigins(dir string) (map[string][]Origin, error) {
	data, err := os.ReadFile(filepath.Join(dir, OriginsFile))
	if os.IsNotExist(err) {
		return map[string][]Origin{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string][]Origin{}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, OriginsFile), err)
	}
	return out, nil
}
