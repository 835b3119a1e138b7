package main

import (
	"strings"
	"testing"

	"github.com/cloudlab/platform/tools/rendered"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// istioWebhooks are the selectors of the istiod chart's MutatingWebhookConfiguration
// (istio-sidecar-injector, revision default), as rendered.
const istioWebhooks = `
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: istio-sidecar-injector}
webhooks:
- name: rev.namespace.sidecar-injector.istio.io
  namespaceSelector: {matchExpressions: [{key: istio.io/rev, operator: In, values: [default]}, {key: istio-injection, operator: DoesNotExist}]}
  objectSelector: {matchExpressions: [{key: sidecar.istio.io/inject, operator: NotIn, values: ["false"]}]}
- name: rev.object.sidecar-injector.istio.io
  namespaceSelector: {matchExpressions: [{key: istio.io/rev, operator: DoesNotExist}, {key: istio-injection, operator: DoesNotExist}]}
  objectSelector: {matchExpressions: [{key: sidecar.istio.io/inject, operator: NotIn, values: ["false"]}, {key: istio.io/rev, operator: In, values: [default]}]}
- name: namespace.sidecar-injector.istio.io
  namespaceSelector: {matchExpressions: [{key: istio-injection, operator: In, values: [enabled]}]}
  objectSelector: {matchExpressions: [{key: sidecar.istio.io/inject, operator: NotIn, values: ["false"]}]}
- name: object.sidecar-injector.istio.io
  namespaceSelector: {matchExpressions: [{key: istio-injection, operator: DoesNotExist}, {key: istio.io/rev, operator: DoesNotExist}]}
  objectSelector: {matchExpressions: [{key: sidecar.istio.io/inject, operator: In, values: ["true"]}, {key: istio.io/rev, operator: DoesNotExist}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: istio-sidecar-injector, namespace: istio-system}
data: {config: "policy: enabled", values: "{}"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data: {mesh: "{}"}
`

func gateway(nsLabels string) []*unstructured.Unstructured {
	objs, err := rendered.DecodeObjects([]byte(istioWebhooks + `
---
apiVersion: v1
kind: Namespace
metadata: {name: istio-ingress, labels: {` + nsLabels + `}}
---
apiVersion: v1
kind: Namespace
metadata: {name: cloudlab, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: istio-ingressgateway, namespace: istio-ingress}
spec:
  template:
    metadata: {labels: {sidecar.istio.io/inject: "true"}, annotations: {inject.istio.io/templates: gateway}}
    spec: {containers: [{name: istio-proxy, image: auto}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: cloudlab}
spec:
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web:1.0.0}]}
`))
	if err != nil {
		panic(err)
	}
	return objs
}

// TestInjectionFollowsTheWebhookSelectors: a pod is injected exactly when one of istiod's
// webhooks selects it, and a gateway left with `image: auto` (its namespace turns injection
// off) is named.
func TestInjectionFollowsTheWebhookSelectors(t *testing.T) {
	objs := gateway(`istio-injection: disabled`)
	in, err := NewInjector("istioctl", objs)
	if err != nil || in == nil {
		t.Fatalf("NewInjector: %v %v", in, err)
	}
	if in.selects("istio-ingress", map[string]string{"sidecar.istio.io/inject": "true"}) {
		t.Error("a namespace labelled istio-injection=disabled was injected")
	}
	if !in.selects("cloudlab", map[string]string{"app": "web"}) {
		t.Error("a pod of a namespace labelled istio-injection=enabled was not injected")
	}
	if in.selects("cloudlab", map[string]string{"app": "web", "sidecar.istio.io/inject": "false"}) {
		t.Error("a pod that opts out was injected")
	}
	problems := NotInjected(objs)
	if len(problems) != 1 || !strings.Contains(problems[0], `Deployment istio-ingress/istio-ingressgateway: container istio-proxy has image "auto"`) {
		t.Errorf("NotInjected = %q", problems)
	}

	in, err = NewInjector("istioctl", gateway(`app.kubernetes.io/name: istio-ingress`))
	if err != nil {
		t.Fatal(err)
	}
	if !in.selects("istio-ingress", map[string]string{"sidecar.istio.io/inject": "true"}) {
		t.Error("the gateway's pods (sidecar.istio.io/inject=true, namespace without istio-injection) were not injected")
	}
}
