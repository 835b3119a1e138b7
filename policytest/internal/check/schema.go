package check

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
// (root-app.yaml) are included.
func Schema(validator, kubeVersion string, clusters []*render.Cluster) ([]render.Finding, error) {
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
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, key := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = validate(validator, kubeVersion, groups[key])
		}()
	}
	wg.Wait()
	var out []render.Finding
	for i := range keys {
		if errs[i] != nil {
			return nil, errs[i]
		}
		out = append(out, results[i]...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// crdFingerprint identifies the CRDs a cluster installs (their names and content).
func crdFingerprint(c *render.Cluster) string {
	h := sha256.New()
	var parts []string
	for _, o := range crdsOf(c) {
		js, _ := o.MarshalJSON()
		parts = append(parts, fmt.Sprintf("%s %x", o.GetName(), sha256.Sum256(js)))
	}
	sort.Strings(parts)
	for _, p := range parts {
		h.Write([]byte(p + "\n"))
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// crdsOf lists the CustomResourceDefinitions among a cluster's rendered objects.
func crdsOf(c *render.Cluster) []*unstructured.Unstructured {
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

// validate runs kubectl-validate once on the objects of clusters that install the same CRDs.
func validate(validator, kubeVersion string, clusters []*render.Cluster) ([]render.Finding, error) {
	dir, err := os.MkdirTemp("", "cloudlab-schema-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	type origin struct {
		cluster, app string
		obj          *unstructured.Unstructured
	}
	files := map[string]origin{}
	n := 0
	write := func(sub, cluster, app string, o *unstructured.Unstructured) error {
		n++
		path := filepath.Join(dir, sub, fmt.Sprintf("%05d.yaml", n))
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if cluster != "" {
			files[path] = origin{cluster, app, o}
		}
		return os.WriteFile(path, y, 0o644)
	}
	for _, o := range crdsOf(clusters[0]) {
		if err := write("crds", "", "", o); err != nil {
			return nil, err
		}
	}
	for _, c := range clusters {
		for _, o := range c.Bootstrap {
			if err := write(filepath.Join("objects", c.Name), c.Name, render.RootName, o); err != nil {
				return nil, err
			}
		}
		for _, a := range c.AllApps() {
			for _, o := range a.Objects {
				if err := write(filepath.Join("objects", c.Name), c.Name, a.Name(), o); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(files) == 0 {
		return nil, nil
	}
	args := []string{filepath.Join(dir, "objects"), "--version", kubeVersion, "--output", "json"}
	if _, err := os.Stat(filepath.Join(dir, "crds")); err == nil {
		args = append(args, "--local-crds", filepath.Join(dir, "crds"))
	}
	cmd := exec.Command(validator, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run() // exit 1 when anything is invalid; the JSON says what
	var results map[string][]struct {
		Status  string `json:"status"`
		Message string `json:"message"`
		Details struct {
			Causes []struct {
				Field   string `json:"field"`
				Message string `json:"message"`
			} `json:"causes"`
		} `json:"details"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		return nil, fmt.Errorf("kubectl-validate: %v (%v): %s", err, runErr, stderr.String())
	}
	var out []render.Finding
	for path, statuses := range results {
		abs := path
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(dir, "objects", path)
		}
		org, ok := files[filepath.Clean(abs)]
		if !ok {
			return nil, fmt.Errorf("kubectl-validate reported an unknown file %s", path)
		}
		for _, st := range statuses {
			if st.Status == "Success" {
				continue
			}
			if len(st.Details.Causes) == 0 {
				out = append(out, render.ObjectFinding(org.cluster, org.app, org.obj, "schema: "+cleanMessage(st.Message)))
			}
			for _, cause := range st.Details.Causes {
				if cause.Field == "metadata.name" && rbacName(org.obj) {
					continue
				}
				msg := cleanMessage(cause.Message)
				if cause.Field != "" {
					msg = cause.Field + ": " + msg
				}
				out = append(out, render.ObjectFinding(org.cluster, org.app, org.obj, "schema (Kubernetes "+kubeVersion+"): "+msg))
			}
		}
	}
	return out, nil
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
