package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cloudlab/platform/tools/rendered"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// Injector adds the sidecar istiod injects at admission to the pod templates the rendered
// MutatingWebhookConfiguration istio-sidecar-injector selects. It runs `istioctl kube-inject`
// (the injector of Istio itself, offline) with the injection templates and values of the
// rendered istio-sidecar-injector ConfigMap, the mesh configuration of the rendered istio
// ConfigMap, and istiod's own ENABLE_NATIVE_SIDECARS: the sidecar, its resources and init
// containers are what the vendored istiod chart and our values make, not a copy.
type Injector struct {
	istioctl             string
	config, values, mesh string
	nativeSidecars       string
	webhooks             []webhook
	namespaceLabels      map[string]labels.Set
}

type webhook struct {
	name                         string
	namespaceSel, objectSelector labels.Selector
}

// NewInjector reads the injector from the rendered objects; nil when they hold none (no istiod).
func NewInjector(istioctl string, objs []*unstructured.Unstructured) (*Injector, error) {
	in := &Injector{istioctl: istioctl, namespaceLabels: map[string]labels.Set{}}
	found := false
	for _, o := range objs {
		switch {
		case o.GetKind() == "ConfigMap" && o.GetName() == "istio-sidecar-injector":
			in.config, _, _ = unstructured.NestedString(o.Object, "data", "config")
			in.values, _, _ = unstructured.NestedString(o.Object, "data", "values")
			found = true
		case o.GetKind() == "ConfigMap" && o.GetName() == "istio" && o.GetNamespace() == "istio-system":
			in.mesh, _, _ = unstructured.NestedString(o.Object, "data", "mesh")
		case o.GetKind() == "Deployment" && o.GetName() == "istiod":
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for _, c := range containers {
				env, _, _ := unstructured.NestedSlice(c.(map[string]any), "env")
				for _, e := range env {
					if em := e.(map[string]any); em["name"] == "ENABLE_NATIVE_SIDECARS" {
						in.nativeSidecars, _ = em["value"].(string)
					}
				}
			}
		case o.GetKind() == "MutatingWebhookConfiguration" && o.GetName() == "istio-sidecar-injector":
			hooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
			for _, h := range hooks {
				w, err := toWebhook(h.(map[string]any))
				if err != nil {
					return nil, fmt.Errorf("MutatingWebhookConfiguration %s: %w", o.GetName(), err)
				}
				in.webhooks = append(in.webhooks, w)
			}
		case o.GetKind() == "Namespace":
			set := labels.Set{"kubernetes.io/metadata.name": o.GetName()} // the API server adds it
			for k, v := range o.GetLabels() {
				set[k] = v
			}
			in.namespaceLabels[o.GetName()] = set
		}
	}
	if !found {
		return nil, nil
	}
	if in.mesh == "" || len(in.webhooks) == 0 {
		return nil, fmt.Errorf("the rendered istiod has an injector ConfigMap but no mesh ConfigMap istio-system/istio or webhook configuration")
	}
	return in, nil
}

func toWebhook(h map[string]any) (webhook, error) {
	w := webhook{name: fmt.Sprint(h["name"])}
	sel := func(field string) (labels.Selector, error) {
		raw, ok := h[field]
		if !ok {
			return labels.Everything(), nil
		}
		js, err := yaml.Marshal(raw)
		if err != nil {
			return nil, err
		}
		var ls metav1.LabelSelector
		if err := yaml.Unmarshal(js, &ls); err != nil {
			return nil, err
		}
		return metav1.LabelSelectorAsSelector(&ls)
	}
	var err error
	if w.namespaceSel, err = sel("namespaceSelector"); err != nil {
		return w, err
	}
	w.objectSelector, err = sel("objectSelector")
	return w, err
}

// selects reports whether the API server would call one of the injector's webhooks for a pod
// with these labels in namespace ns (a webhook is called when its namespaceSelector and its
// objectSelector both match).
func (in *Injector) selects(ns string, podLabels map[string]string) bool {
	nsLabels, ok := in.namespaceLabels[ns]
	if !ok {
		nsLabels = labels.Set{"kubernetes.io/metadata.name": ns}
	}
	for _, w := range in.webhooks {
		if w.namespaceSel.Matches(nsLabels) && w.objectSelector.Matches(labels.Set(podLabels)) {
			return true
		}
	}
	return false
}

// podTemplate is where a workload keeps its pod template (nil: not a workload).
func podTemplate(kind string) []string {
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
		return []string{"spec", "template"}
	case "CronJob":
		return []string{"spec", "jobTemplate", "spec", "template"}
	}
	return nil
}

// NotInjected lists the workloads whose pod template still says `image: auto` (the Istio
// gateway chart's placeholder, which only istiod's injector replaces): on a real cluster their
// pods could never start.
func NotInjected(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		path := podTemplate(o.GetKind())
		if path == nil {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, append(append([]string{}, path...), "spec", "containers")...)
		for _, c := range containers {
			if cm, _ := c.(map[string]any); cm["image"] == "auto" {
				out = append(out, fmt.Sprintf("%s %s/%s: container %v has image \"auto\" but no injection webhook selects its pods (namespace labels, sidecar.istio.io/inject)", o.GetKind(), o.GetNamespace(), o.GetName(), cm["name"]))
			}
		}
	}
	return out
}

// Inject replaces the pod template of every workload the webhook selects with the injected one
// and returns how many it injected. work is a folder for istioctl's input files.
func (in *Injector) Inject(ctx context.Context, work string, objs []*unstructured.Unstructured) (int, error) {
	var selected []*unstructured.Unstructured
	var stream bytes.Buffer
	for _, o := range objs {
		path := podTemplate(o.GetKind())
		if path == nil {
			continue
		}
		podLabels, _, _ := unstructured.NestedStringMap(o.Object, append(append([]string{}, path...), "metadata", "labels")...)
		if !in.selects(o.GetNamespace(), podLabels) {
			continue
		}
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			return 0, err
		}
		stream.WriteString("---\n")
		stream.Write(y)
		selected = append(selected, o)
	}
	if len(selected) == 0 {
		return 0, nil
	}
	files := map[string]string{"inject-config.yaml": in.config, "values.json": in.values, "mesh.yaml": in.mesh, "workloads.yaml": stream.String()}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(work, name), []byte(content), 0o644); err != nil {
			return 0, err
		}
	}
	// --revision default: the default revision, without asking a cluster which one is default.
	cmd := exec.CommandContext(ctx, in.istioctl, "kube-inject", "--revision", "default",
		"--injectConfigFile", filepath.Join(work, "inject-config.yaml"),
		"--valuesFile", filepath.Join(work, "values.json"),
		"--meshConfigFile", filepath.Join(work, "mesh.yaml"),
		"-f", filepath.Join(work, "workloads.yaml"))
	// istiod decides native sidecars from its own environment; istioctl reads the same variable.
	cmd.Env = append(os.Environ(), "ENABLE_NATIVE_SIDECARS="+in.nativeSidecars)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("istioctl kube-inject: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	injected, err := rendered.DecodeObjects(stdout.Bytes())
	if err != nil {
		return 0, fmt.Errorf("istioctl kube-inject output: %w", err)
	}
	byKey := map[string]*unstructured.Unstructured{}
	for _, o := range injected {
		byKey[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()] = o
	}
	for _, o := range selected {
		out, ok := byKey[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()]
		if !ok {
			return 0, fmt.Errorf("istioctl kube-inject did not return %s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
		}
		path := podTemplate(o.GetKind())
		tmpl, _, _ := unstructured.NestedMap(out.Object, path...)
		if err := unstructured.SetNestedMap(o.Object, tmpl, path...); err != nil {
			return 0, err
		}
	}
	return len(selected), nil
}
