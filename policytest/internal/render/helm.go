package render

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"

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
	args := []string{"template", r.Chart.File, "--name-template", r.Name, "--namespace", r.Namespace}
	if r.KubeVersion != "" {
		args = append(args, "--kube-version", r.KubeVersion)
	}
	for _, f := range r.ValueFiles {
		args = append(args, "--values", f)
	}
	for _, v := range r.APIVersions {
		args = append(args, "--api-versions", v)
	}
	if !r.SkipCRDs {
		args = append(args, "--include-crds")
	}
	cmd := exec.CommandContext(ctx, helm, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		msg = strings.TrimSuffix(msg, "Use --debug flag to render out invalid YAML")
		return nil, fmt.Errorf("helm template %s %s: %s", r.Chart.Name, r.Chart.Version, strings.Join(strings.Fields(msg), " "))
	}
	objs, err := DecodeObjects(stdout.Bytes())
	if err != nil {
		return nil, fmt.Errorf("helm template %s %s: output does not parse: %w", r.Chart.Name, r.Chart.Version, err)
	}
	out := objs[:0]
	for _, o := range objs {
		if SyncedByArgoCD(o) {
			out = append(out, o)
		}
	}
	return out, nil
}

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
