package monitoring

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// RuleObject is one PrometheusRule: its name and its rule groups (spec.groups).
type RuleObject struct {
	Name   string
	Labels map[string]string
	Groups []RuleGroup `json:"groups"`
}

// RuleGroup is a Prometheus rule group, with the fields the PrometheusRule CRD allows.
type RuleGroup struct {
	Name                    string            `json:"name"`
	Interval                string            `json:"interval,omitempty"`
	QueryOffset             string            `json:"query_offset,omitempty"`
	Limit                   *int              `json:"limit,omitempty"`
	PartialResponseStrategy string            `json:"partial_response_strategy,omitempty"`
	Labels                  map[string]string `json:"labels,omitempty"`
	Rules                   []Rule            `json:"rules"`
}

// Rule is a recording rule (Record set) or an alerting rule (Alert set).
type Rule struct {
	Record        string            `json:"record,omitempty"`
	Alert         string            `json:"alert,omitempty"`
	Expr          string            `json:"expr"`
	For           string            `json:"for,omitempty"`
	KeepFiringFor string            `json:"keep_firing_for,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

func ruleObject(o *unstructured.Unstructured) (RuleObject, error) {
	r := RuleObject{Name: o.GetName(), Labels: o.GetLabels()}
	spec, ok := o.Object["spec"]
	if !ok {
		return r, fmt.Errorf("no spec")
	}
	var s struct {
		Groups []RuleGroup `json:"groups"`
	}
	if err := remarshal(spec, &s); err != nil {
		return r, err
	}
	r.Groups = s.Groups
	return r, nil
}

// AlertRule is an alerting rule and where it is written.
type AlertRule struct {
	Object, Group string
	Rule
}

// Alerts lists every alerting rule of the environment, in render order.
func (e *Env) Alerts() []AlertRule {
	var out []AlertRule
	for _, o := range e.Rules {
		for _, g := range o.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					out = append(out, AlertRule{Object: o.Name, Group: g.Name, Rule: r})
				}
			}
		}
	}
	return out
}

// Recorded lists the metric names the environment's recording rules produce.
func (e *Env) Recorded() []string {
	seen := map[string]bool{}
	for _, o := range e.Rules {
		for _, g := range o.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					seen[r.Record] = true
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// RuleFileName is the file a PrometheusRule's groups are written to for promtool; the unit
// tests in platform/monitoring/tests/ name these files in their rule_files.
func RuleFileName(object string) string { return object + ".rules.yaml" }

// RuleFiles returns the content of every rule file WriteRuleFiles writes, by file name.
func (e *Env) RuleFiles() (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, o := range e.Rules {
		b, err := yamlMarshal(map[string]any{"groups": o.Groups})
		if err != nil {
			return nil, err
		}
		out[RuleFileName(o.Name)] = b
	}
	return out, nil
}

// WriteRuleFiles writes every PrometheusRule's groups as a Prometheus rule file into dir (as
// the Prometheus Operator hands them to Prometheus) and returns the files' names.
func (e *Env) WriteRuleFiles(dir string) ([]string, error) {
	var names []string
	for _, o := range e.Rules {
		b, err := yamlMarshal(map[string]any{"groups": o.Groups})
		if err != nil {
			return nil, err
		}
		name := RuleFileName(o.Name)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, nil
}
