package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cloudlab/platform/policytest/internal/render"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Schema validates every rendered object of the clusters strictly (unknown fields are errors,
// CRD CEL rules are evaluated) against Kubernetes kubeVersion and the vendored CRDs, with one
// run of kubectl-validate for all clusters. Bootstrap objects (root-app.yaml) are included.
func Schema(validator, kubeVersion, crdDir string, clusters []*render.Cluster) ([]render.Finding, error) {
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
	write := func(cluster, app string, o *unstructured.Unstructured) error {
		n++
		rel := filepath.Join(cluster, fmt.Sprintf("%05d.yaml", n))
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, cluster), 0o755); err != nil {
			return err
		}
		files[filepath.Join(dir, rel)] = origin{cluster, app, o}
		return os.WriteFile(filepath.Join(dir, rel), y, 0o644)
	}
	for _, c := range clusters {
		for _, o := range c.Bootstrap {
			if err := write(c.Name, render.RootName, o); err != nil {
				return nil, err
			}
		}
		for _, a := range c.AllApps() {
			for _, o := range a.Objects {
				if err := write(c.Name, a.Name(), o); err != nil {
					return nil, err
				}
			}
		}
	}
	if n == 0 {
		return nil, nil
	}

	crdDirs, err := subdirs(crdDir)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(validator, dir, "--version", kubeVersion, "--local-crds", strings.Join(crdDirs, ","), "--output", "json")
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
			abs = filepath.Join(dir, path)
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
				msg := cleanMessage(cause.Message)
				if cause.Field != "" {
					msg = cause.Field + ": " + msg
				}
				out = append(out, render.ObjectFinding(org.cluster, org.app, org.obj, "schema (Kubernetes "+kubeVersion+"): "+msg))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// cleanMessage makes kubectl-validate's API-server phrasing read as advice.
func cleanMessage(m string) string {
	m = strings.TrimPrefix(m, "Internal error occurred: ")
	m = strings.Replace(m, "failed to retrieve validator: failed to locate OpenAPI spec for GV:", "apiVersion not served by Kubernetes or the vendored CRDs:", 1)
	return m
}

func subdirs(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, filepath.Join(root, e.Name()))
		}
	}
	return out, nil
}
