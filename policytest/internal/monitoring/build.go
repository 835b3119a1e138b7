// Package monitoring checks the observability-as-code of clusters/<env>/monitoring/: it builds
// the kustomization the way Argo CD does, and gives the PrometheusRules, Grafana dashboards and
// Alertmanager objects to the checks of policytest/monitoring_test.go (promtool, the PromQL
// metric names, runbook links, routing and inhibition).
package monitoring

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cloudlab/platform/policytest/internal/render"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
)

// Env is what clusters/<env>/monitoring renders.
type Env struct {
	Name    string
	Objects []*unstructured.Unstructured
	// Rules are the PrometheusRules, in render order.
	Rules []RuleObject
	// Dashboards are the Grafana dashboards found in ConfigMaps labelled for the sidecar.
	Dashboards []Dashboard
	// Alertmanager is the global AlertmanagerConfig (nil if there is none).
	Alertmanager *AlertmanagerConfig
}

// Dir is the kustomization of one environment's monitoring, relative to the repository root.
func Dir(env string) string { return filepath.Join("clusters", env, "monitoring") }

// Build renders clusters/<env>/monitoring under repoRoot with kustomize's default options (no
// Helm: the folder inflates no chart; load restrictions as Argo CD's: root only) and sorts the
// objects into rules, dashboards and the Alertmanager configuration. An error means the folder
// does not build or an object cannot be read.
func Build(repoRoot, env string) (*Env, error) {
	dir := filepath.Join(repoRoot, Dir(env))
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("%s: %w", Dir(env), err)
	}
	objs, err := render.Kustomize(krusty.MakeDefaultOptions(), dir)
	if err != nil {
		return nil, fmt.Errorf("%s does not build: %w", Dir(env), err)
	}
	e := &Env{Name: env, Objects: objs}
	for _, o := range objs {
		switch o.GetKind() {
		case "PrometheusRule":
			r, err := ruleObject(o)
			if err != nil {
				return nil, fmt.Errorf("%s: PrometheusRule %s: %w", env, o.GetName(), err)
			}
			e.Rules = append(e.Rules, r)
		case "ConfigMap":
			ds, err := dashboards(o)
			if err != nil {
				return nil, fmt.Errorf("%s: ConfigMap %s: %w", env, o.GetName(), err)
			}
			e.Dashboards = append(e.Dashboards, ds...)
		case "AlertmanagerConfig":
			if e.Alertmanager != nil {
				return nil, fmt.Errorf("%s: more than one AlertmanagerConfig (%s, %s): the global configuration is one object", env, e.Alertmanager.Name, o.GetName())
			}
			a, err := alertmanagerConfig(o)
			if err != nil {
				return nil, fmt.Errorf("%s: AlertmanagerConfig %s: %w", env, o.GetName(), err)
			}
			e.Alertmanager = a
		}
	}
	return e, nil
}

// Of returns the rendered objects of one kind.
func (e *Env) Of(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range e.Objects {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// remarshal turns a generic object into a typed one through JSON-compatible YAML.
func remarshal(in any, out any) error {
	b, err := yamlMarshal(in)
	if err != nil {
		return err
	}
	return yamlUnmarshalStrict(b, out)
}
