package render

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Release is one upstream chart as an Application deploys it.
type Release struct {
	Chart       *Chart
	Name        string   // spec.source.helm.releaseName (Argo CD's default: the Application's name)
	Namespace   string   // spec.destination.namespace
	KubeVersion string   // the cluster's Kubernetes version, e.g. 1.32.0
	APIVersions []string // the cluster's API versions (group/version and group/version/Kind)
	ValueFiles  []string // absolute paths, in the Application's order
	SkipCRDs    bool     // spec.source.helm.skipCrds
}

// Template renders a release exactly as Argo CD's repo server does (util/helm/cmd.go of
// argoproj/argo-cd: `helm template <chart> --name-template <release> --namespace <ns>
// --kube-version <v> --values <f>... --api-versions <v>... --include-crds`), and keeps what a
// sync applies: Helm hooks that Argo CD maps to sync phases (pre/post-install and -upgrade
// become PreSync/PostSync; crd-install is an ordinary resource) stay, and the hooks it never
// runs during a sync (test, rollback and delete hooks) are dropped, as gitops-engine's
// helmHookToArgocdPhaseMap does. The error carries helm's own message (a schema violation of
// values.schema.json, a failed `required` or `fail`).
func Template(ctx context.Context, helm string, r Release) ([]*unstructured.Unstructured, error) {
	objs, _, err := TemplateCached(ctx, helm, "", r)
	return objs, err
}

// templateArgs are helm's arguments for r, with every file named through file (the chart and
// the values files).
func templateArgs(r Release, file func(string) string) []string {
	args := []string{"template", file(r.Chart.File), "--name-template", r.Name, "--namespace", r.Namespace}
	if r.KubeVersion != "" {
		args = append(args, "--kube-version", r.KubeVersion)
	}
	for _, f := range r.ValueFiles {
		args = append(args, "--values", file(f))
	}
	for _, v := range r.APIVersions {
		args = append(args, "--api-versions", v)
	}
	if !r.SkipCRDs {
		args = append(args, "--include-crds")
	}
	return args
}

// TemplateRun says whether a `helm template` output came from the cache, and under which key.
type TemplateRun struct {
	Key    string
	Cached bool
}

// TemplateStats sums up a cluster's `helm template` runs: how many, how many of them cached, and
// one key over all of theirs.
type TemplateStats struct {
	Runs, Cached int
	Key          string
}

// TemplateKey is a SHA-256 over everything `helm template` reads for r: the helm binary (its
// bytes), the chart archive and each values file (their bytes, in order) and every other
// argument (release name, namespace, Kubernetes version, API versions, --include-crds). The
// files' paths are not part of it: the output does not depend on them.
func TemplateKey(helm string, r Release) (string, error) {
	var ferr error
	hash := func(path string) string {
		h, err := FileHash(path)
		if err != nil && ferr == nil {
			ferr = err
		}
		return "sha256:" + h
	}
	bin := hash(helm)
	args := templateArgs(r, hash)
	if ferr != nil {
		return "", ferr
	}
	return fmt.Sprintf("%x", sha256.Sum256([]byte("helm "+bin+"\n"+strings.Join(args, "\n")))), nil
}

// TemplateCached is Template, with helm's output kept in the folder cache (when not "") by
// TemplateKey: the same inputs give the same output, so a kept one is used instead of running
// helm again (docs/verify.md#result-cache). Only successful runs are kept.
func TemplateCached(ctx context.Context, helm, cache string, r Release) ([]*unstructured.Unstructured, TemplateRun, error) {
	var run TemplateRun
	var out []byte
	if cache != "" {
		key, err := TemplateKey(helm, r)
		if err != nil {
			return nil, run, err
		}
		run.Key = key
		if b, err := os.ReadFile(filepath.Join(cache, key+".yaml")); err == nil {
			out, run.Cached = b, true
		}
	}
	if !run.Cached {
		cmd := exec.CommandContext(ctx, helm, templateArgs(r, func(f string) string { return f })...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			msg := strings.TrimSpace(stderr.String())
			msg = strings.TrimSuffix(msg, "Use --debug flag to render out invalid YAML")
			return nil, run, fmt.Errorf("helm template %s %s: %s", r.Chart.Name, r.Chart.Version, strings.Join(strings.Fields(msg), " "))
		}
		out = stdout.Bytes()
		if run.Key != "" {
			if err := writeAtomic(cache, run.Key+".yaml", out); err != nil {
				return nil, run, err
			}
		}
	}
	objs, err := DecodeObjects(out)
	if err != nil {
		return nil, run, fmt.Errorf("helm template %s %s: output does not parse: %w", r.Chart.Name, r.Chart.Version, err)
	}
	synced := objs[:0]
	for _, o := range objs {
		if SyncedByArgoCD(o) {
			synced = append(synced, o)
		}
	}
	return synced, run, nil
}

// ResultCache is the folder of make verify's result caches: $RESULT_CACHE, by default
// ~/.cache/cloudlab/results; "" when RESULT_CACHE=off (docs/verify.md#result-cache).
func ResultCache() string {
	dir := os.Getenv("RESULT_CACHE")
	if dir == "off" {
		return ""
	}
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".cache", "cloudlab", "results")
	}
	return dir
}

var fileHashes sync.Map // path -> hashed: a file's SHA-256, with the size and time it had then

type hashed struct {
	size int64
	mod  time.Time
	sum  string
}

// TemplateCacheDir is where TemplateCached keeps helm's output: helm-template/ in ResultCache
// ("" when the result cache is off).
func TemplateCacheDir() string {
	if dir := ResultCache(); dir != "" {
		return filepath.Join(dir, "helm-template")
	}
	return ""
}

// FileHash is the hex SHA-256 of a file's content (remembered per path for as long as its size
// and modification time stay the same: binaries of 100 MB are hashed once per process).
func FileHash(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if h, ok := fileHashes.Load(path); ok {
		if h := h.(hashed); h.size == fi.Size() && h.mod.Equal(fi.ModTime()) {
			return h.sum, nil
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	sum := fmt.Sprintf("%x", h.Sum(nil))
	fileHashes.Store(path, hashed{fi.Size(), fi.ModTime(), sum})
	return sum, nil
}

// writeAtomic writes dir/name so that a concurrent reader sees all of it or nothing.
func writeAtomic(dir, name string, b []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".partial-")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(f.Name())
		return werr
	}
	return os.Rename(f.Name(), filepath.Join(dir, name))
}

// WriteAtomic is writeAtomic for the other caches (check's schema verdicts).
func WriteAtomic(dir, name string, b []byte) error { return writeAtomic(dir, name, b) }

// shortHash is the first 16 hex digits of a SHA-256 of s.
func shortHash(s string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(s)))[:16] }

// argoHelmHooks are the Helm hooks that Argo CD runs during a sync (gitops-engine
// pkg/sync/hook/helm: crd-install, pre-install and pre-upgrade become PreSync, post-install and
// post-upgrade PostSync). crd-install is not even a hook for Argo CD: an ordinary resource.
var argoHelmHooks = map[string]bool{"crd-install": true, "pre-install": true, "pre-upgrade": true, "post-install": true, "post-upgrade": true}

// SyncedByArgoCD reports whether a sync applies the object: every object without a Helm hook
// annotation (or with an Argo CD hook annotation, which takes precedence), and Helm hooks of
// the phases Argo CD maps. `helm test` pods, rollback and delete hooks are not applied.
func SyncedByArgoCD(o *unstructured.Unstructured) bool {
	ann := o.GetAnnotations()
	if _, ok := ann["argocd.argoproj.io/hook"]; ok {
		return ann["argocd.argoproj.io/hook"] != "Skip"
	}
	hooks, ok := ann["helm.sh/hook"]
	if !ok {
		return true
	}
	for _, h := range strings.Split(hooks, ",") {
		if argoHelmHooks[strings.TrimSpace(h)] {
			return true
		}
	}
	return false
}

// APIVersions lists what Argo CD passes as --api-versions for the CRDs among objs: every served
// version as group/version and group/version/Kind, sorted. (Helm adds the built-in Kubernetes
// APIs itself.)
func APIVersions(objs []*unstructured.Unstructured) []string {
	seen := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		versions, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
		for _, v := range versions {
			vm, _ := v.(map[string]any)
			name, _ := vm["name"].(string)
			if served, _ := vm["served"].(bool); !served || name == "" {
				continue
			}
			seen[group+"/"+name] = true
			seen[group+"/"+name+"/"+kind] = true
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}
