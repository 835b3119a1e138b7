package check

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/cloudlab/platform/policytest/internal/render"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Schema validates every rendered object of the clusters strictly (unknown fields are errors,
// CRD CEL rules are evaluated) against Kubernetes kubeVersion and the CRDs the cluster's own
// Applications install (the pinned charts' CRDs: one source), with kubectl-validate: one run per
// distinct set of CRDs, in parallel (all clusters share one set today). Bootstrap objects
// (clusters/<env>/bootstrap) are included. Verdicts come from the result cache when it has them
// (SchemaCache); the note says how many.
func Schema(validator, kubeVersion string, clusters []*render.Cluster) ([]render.Finding, string, error) {
	groups := map[string][]*render.Cluster{} // CRD set fingerprint -> clusters
	var keys []string
	for _, c := range clusters {
		key := crdFingerprint(c)
		if groups[key] == nil {
			keys = append(keys, key)
		}
		groups[key] = append(groups[key], c)
	}
	results := make([][]render.Finding, len(keys))
	notes := make([]string, len(keys))
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, key := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], notes[i], errs[i] = ValidateNote(validator, kubeVersion, CRDs(groups[key][0]), groups[key])
		}()
	}
	wg.Wait()
	var out []render.Finding
	for i := range keys {
		if errs[i] != nil {
			return nil, "", errs[i]
		}
		out = append(out, results[i]...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, strings.Join(notes, "; "), nil
}

// crdFingerprint identifies the CRDs a cluster installs (their names and content).
func crdFingerprint(c *render.Cluster) string {
	h := sha256.New()
	var parts []string
	for _, o := range CRDs(c) {
		js, _ := o.MarshalJSON()
		parts = append(parts, fmt.Sprintf("%s %x", o.GetName(), sha256.Sum256(js)))
	}
	sort.Strings(parts)
	for _, p := range parts {
		h.Write([]byte(p + "\n"))
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// CRDs lists the CustomResourceDefinitions among a cluster's rendered objects.
func CRDs(c *render.Cluster) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, a := range c.AllApps() {
		for _, o := range a.Objects {
			if o.GetKind() == "CustomResourceDefinition" {
				out = append(out, o)
			}
		}
	}
	return out
}

// Validate runs kubectl-validate on the objects of clusters against Kubernetes kubeVersion and
// crds. An object rendered identically in several clusters is validated once (the result is the
// same) and reported for each; the unique objects are split over parallel runs, one per CPU.
// An object whose verdict the result cache holds is not validated again (SchemaCache).
func Validate(validator, kubeVersion string, crds []*unstructured.Unstructured, clusters []*render.Cluster) ([]render.Finding, error) {
	f, _, err := ValidateNote(validator, kubeVersion, crds, clusters)
	return f, err
}

// ValidateNote is Validate, and says how many verdicts came from the result cache, under which
// key.
func ValidateNote(validator, kubeVersion string, crds []*unstructured.Unstructured, clusters []*render.Cluster) ([]render.Finding, string, error) {
	f, note, err := validate(validator, kubeVersion, crds, clusters)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", note, err)
	}
	return f, note, nil
}

func validate(validator, kubeVersion string, crds []*unstructured.Unstructured, clusters []*render.Cluster) ([]render.Finding, string, error) {
	dir, err := os.MkdirTemp("", "cloudlab-schema-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	cache, err := openSchemaCache(validator, kubeVersion, crds)
	if err != nil {
		return nil, "", err
	}
	run := &schemaRun{validator: validator, kubeVersion: kubeVersion, dir: dir, cache: cache,
		origins: map[string][]origin{}, byHash: map[[32]byte]string{}, hashOf: map[string][32]byte{}, cached: map[string][]validation{}}
	if err := run.writeCRDs(crds); err != nil {
		return nil, "", err
	}
	for _, c := range clusters {
		for _, o := range c.Bootstrap {
			if err := run.add(c.Name, render.RootName, o); err != nil {
				return nil, "", err
			}
		}
		for _, a := range c.AllApps() {
			for _, o := range a.Objects {
				if err := run.add(c.Name, a.Name(), o); err != nil {
					return nil, "", err
				}
			}
		}
	}
	note := cache.note(len(run.byHash), len(run.cached))
	for file, statuses := range run.cached {
		if err := run.report(file, statuses); err != nil {
			return nil, note, err
		}
	}
	if err := run.validateUnique(); err != nil {
		return nil, note, err
	}
	return run.out, note, nil
}

// origin is where an object is rendered: every place gets the object's findings.
type origin struct {
	cluster, app string
	obj          *unstructured.Unstructured
}

// schemaRun is one validation of every cluster's objects: each distinct object (by its JSON's
// SHA-256) is written once to dir, or taken from the cache, and reported for every origin.
type schemaRun struct {
	validator, kubeVersion, dir string
	cache                       *schemaCache
	crdDir                      string
	origins                     map[string][]origin     // object file -> where it is rendered
	unique                      []string                // object files kubectl-validate has to see, in order
	byHash                      map[[32]byte]string     // object hash -> its file
	hashOf                      map[string][32]byte     // object file -> its hash
	cached                      map[string][]validation // object file -> its verdict from the cache
	out                         []render.Finding
}

// writeCRDs puts the CRDs kubectl-validate validates against into dir/crds.
func (r *schemaRun) writeCRDs(crds []*unstructured.Unstructured) error {
	r.crdDir = filepath.Join(r.dir, "crds")
	if err := os.MkdirAll(r.crdDir, 0o755); err != nil {
		return err
	}
	for i, o := range crds {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(r.crdDir, fmt.Sprintf("%05d.yaml", i)), y, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// add records one rendered object: a new one is written for kubectl-validate (or its verdict
// taken from the cache), a repeated one only gains an origin.
func (r *schemaRun) add(cluster, app string, o *unstructured.Unstructured) error {
	js, err := o.MarshalJSON() // keys sorted: the same object, the same bytes
	if err != nil {
		return err
	}
	h := sha256.Sum256(js)
	file, seen := r.byHash[h]
	if !seen {
		file = fmt.Sprintf("%05d.json", len(r.byHash))
		r.byHash[h] = file
		r.hashOf[file] = h
		if v, ok := r.cache.get(h); ok {
			r.cached[file] = v
		} else {
			r.unique = append(r.unique, file)
			if err := os.WriteFile(filepath.Join(r.dir, file), js, 0o644); err != nil {
				return err
			}
		}
	}
	r.origins[file] = append(r.origins[file], origin{cluster, app, o})
	return nil
}

// report turns the verdict on one object file into findings for every place it is rendered.
func (r *schemaRun) report(file string, statuses []validation) error {
	orgs, ok := r.origins[file]
	if !ok {
		return fmt.Errorf("kubectl-validate reported an unknown file %s", file)
	}
	for _, org := range orgs {
		r.out = append(r.out, findingsOf(org.cluster, org.app, org.obj, r.kubeVersion, statuses)...)
	}
	return nil
}

// validateUnique runs kubectl-validate on the objects the cache did not know, split over up to
// four runs at once, reports them and keeps their verdicts.
func (r *schemaRun) validateUnique() error {
	if len(r.unique) == 0 {
		return nil
	}
	parts := min(runtime.NumCPU(), 4)
	if len(r.unique) < 200 {
		parts = 1 // the fixture: a run's start-up would cost more than it saves
	}
	results := make([]map[string][]validation, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for p := 0; p < parts; p++ {
		part := filepath.Join(r.dir, fmt.Sprintf("part-%d", p))
		if err := os.MkdirAll(part, 0o755); err != nil {
			return err
		}
		for i := p; i < len(r.unique); i += parts {
			if err := os.Rename(filepath.Join(r.dir, r.unique[i]), filepath.Join(part, r.unique[i])); err != nil {
				return err
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[p], errs[p] = runValidator(r.validator, r.kubeVersion, part, r.crdDir)
		}()
	}
	wg.Wait()
	for p := range results {
		if errs[p] != nil {
			return errs[p]
		}
		for path, statuses := range results[p] {
			file := filepath.Base(path)
			if err := r.report(file, statuses); err != nil {
				return err
			}
			if err := r.cache.put(r.hashOf[file], statuses); err != nil {
				return err
			}
		}
	}
	return nil
}

// validation is kubectl-validate's verdict on one object.
type validation struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Details struct {
		Causes []struct {
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"causes"`
	} `json:"details"`
}

// runValidator runs kubectl-validate on the files of dir and returns its verdicts by file.
func runValidator(validator, kubeVersion, dir, crdDir string) (map[string][]validation, error) {
	cmd := exec.Command(validator, dir, "--version", kubeVersion, "--local-crds", crdDir, "--output", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run() // exit 1 when anything is invalid; the JSON says what
	var results map[string][]validation
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		return nil, fmt.Errorf("kubectl-validate: %v (%v): %s", err, runErr, stderr.String())
	}
	return results, nil
}

// findingsOf turns kubectl-validate's verdicts on an object into findings.
func findingsOf(cluster, app string, o *unstructured.Unstructured, kubeVersion string, statuses []validation) []render.Finding {
	var out []render.Finding
	for _, st := range statuses {
		if st.Status == "Success" {
			continue
		}
		if len(st.Details.Causes) == 0 {
			out = append(out, render.ObjectFinding(cluster, app, o, CheckSchema, cleanMessage(st.Message)))
		}
		for _, cause := range st.Details.Causes {
			if cause.Field == "metadata.name" && rbacName(o) {
				continue
			}
			msg := cleanMessage(cause.Message)
			if cause.Field != "" {
				msg = cause.Field + ": " + msg
			}
			out = append(out, render.ObjectFinding(cluster, app, o, CheckSchema, "Kubernetes "+kubeVersion+": "+msg))
		}
	}
	return out
}

// rbacName reports whether the object is an RBAC object whose name the API server accepts:
// kubectl-validate checks every name as a DNS subdomain, but Kubernetes validates RBAC names as
// path segments (pkg/apis/rbac/validation: ValidateRBACName = path.IsValidPathSegmentName), so
// cert-manager's `cert-manager-webhook:dynamic-serving` is valid.
func rbacName(o *unstructured.Unstructured) bool {
	if o.GroupVersionKind().Group != "rbac.authorization.k8s.io" {
		return false
	}
	name := o.GetName()
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/%")
}

// cleanMessage makes kubectl-validate's API-server phrasing read as advice.
func cleanMessage(m string) string {
	m = strings.TrimPrefix(m, "Internal error occurred: ")
	m = strings.Replace(m, "failed to retrieve validator: failed to locate OpenAPI spec for GV:", "apiVersion not served by Kubernetes or the CRDs this cluster installs:", 1)
	return m
}

// schemaCache keeps kubectl-validate's verdict on each object it has seen, in
// $RESULT_CACHE/schema-<key>/<object hash> (default ~/.cache/cloudlab/results;
// RESULT_CACHE=off turns it off). The key is a SHA-256 over everything else a verdict depends
// on: the kubectl-validate binary (its bytes), the Kubernetes version and every CRD validated
// against (name and content); the object hash is a SHA-256 over the object as validated (its JSON). A
// verdict, passing or not, is the same for the same inputs, so a cached one is reported as if
// kubectl-validate had run (docs/verify.md#result-cache).
type schemaCache struct {
	dir, key string // dir is "" when the cache is off
}

func openSchemaCache(validator, kubeVersion string, crds []*unstructured.Unstructured) (*schemaCache, error) {
	root := render.ResultCache()
	if root == "" {
		return &schemaCache{}, nil
	}
	bin, err := render.FileHash(validator)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "kubectl-validate %s\nkubernetes %s\n", bin, kubeVersion)
	var parts []string
	for _, o := range crds {
		js, err := o.MarshalJSON()
		if err != nil {
			return nil, err
		}
		parts = append(parts, fmt.Sprintf("crd %s %x", o.GetName(), sha256.Sum256(js)))
	}
	sort.Strings(parts)
	for _, p := range parts {
		fmt.Fprintln(h, p)
	}
	key := fmt.Sprintf("%x", h.Sum(nil))[:16]
	return &schemaCache{dir: filepath.Join(root, "schema-"+key), key: key}, nil
}

func (c *schemaCache) get(obj [32]byte) ([]validation, bool) {
	if c.dir == "" {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("%x", obj)))
	if err != nil {
		return nil, false
	}
	var v []validation
	if json.Unmarshal(b, &v) != nil || len(v) == 0 {
		return nil, false
	}
	return v, true
}

func (c *schemaCache) put(obj [32]byte, v []validation) error {
	if c.dir == "" || len(v) == 0 {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return render.WriteAtomic(c.dir, fmt.Sprintf("%x", obj), b)
}

// note says how many of the objects' verdicts the cache had.
func (c *schemaCache) note(objects, cached int) string {
	if c.dir == "" {
		return fmt.Sprintf("%d objects validated, result cache off", objects)
	}
	if cached == 0 {
		return fmt.Sprintf("%d objects validated (result cache key %s)", objects, c.key)
	}
	return fmt.Sprintf("%d objects, %d of them cached (key %s)", objects, cached, c.key)
}
