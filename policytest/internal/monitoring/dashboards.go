package monitoring

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// SidecarLabel and SidecarLabelValue are what kube-prometheus-stack 88.5.3's Grafana dashboard
// sidecar looks for (grafana.sidecar.dashboards.label / labelValue, searchNamespace ALL).
const (
	SidecarLabel      = "grafana_dashboard"
	SidecarLabelValue = "1"
)

// Dashboard is one Grafana dashboard of a ConfigMap.
type Dashboard struct {
	ConfigMap, Key string
	UID, Title     string
	Tags           []string
	Variables      []Variable
	Panels         []Panel // every panel, rows' nested panels included, rows themselves excluded
	Annotations    []string
}

// Variable is a dashboard template variable.
type Variable struct {
	Name, Type, Query string
}

// Panel is one panel and the PromQL of its targets.
type Panel struct {
	Title, Type string
	Exprs       []string
}

type grafanaDashboard struct {
	UID        string         `json:"uid"`
	Title      string         `json:"title"`
	Tags       []string       `json:"tags"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
}

type grafanaPanel struct {
	Title   string         `json:"title"`
	Type    string         `json:"type"`
	Panels  []grafanaPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// dashboards reads the dashboards of a ConfigMap labelled for the sidecar (none otherwise).
// Every data key must be a .json file holding one dashboard.
func dashboards(o *unstructured.Unstructured) ([]Dashboard, error) {
	if o.GetLabels()[SidecarLabel] != SidecarLabelValue {
		return nil, nil
	}
	data, _, _ := unstructured.NestedStringMap(o.Object, "data")
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Dashboard
	for _, k := range keys {
		if !strings.HasSuffix(k, ".json") {
			return nil, fmt.Errorf("key %s: the sidecar loads only .json files", k)
		}
		var g grafanaDashboard
		if err := json.Unmarshal([]byte(data[k]), &g); err != nil {
			return nil, fmt.Errorf("key %s is not a dashboard: %w", k, err)
		}
		d := Dashboard{ConfigMap: o.GetName(), Key: k, UID: g.UID, Title: g.Title, Tags: g.Tags}
		for _, v := range g.Templating.List {
			d.Variables = append(d.Variables, Variable{Name: v.Name, Type: v.Type, Query: variableQuery(v.Query)})
		}
		var walk func([]grafanaPanel)
		walk = func(ps []grafanaPanel) {
			for _, p := range ps {
				if p.Type == "row" {
					walk(p.Panels)
					continue
				}
				pn := Panel{Title: p.Title, Type: p.Type}
				for _, t := range p.Targets {
					pn.Exprs = append(pn.Exprs, t.Expr)
				}
				d.Panels = append(d.Panels, pn)
			}
		}
		walk(g.Panels)
		for _, a := range g.Annotations.List {
			if a.Expr != "" {
				d.Annotations = append(d.Annotations, a.Expr)
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// variableQuery reads a query variable's query, which Grafana stores as a string or as
// {"query": "..."}.
func variableQuery(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.Query
	}
	return ""
}

var (
	labelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)
	queryResult = regexp.MustCompile(`^\s*query_result\((.*)\)\s*$`)
	// Grafana's interval variables, replaced by a duration so the query parses as PromQL.
	intervalVars = regexp.MustCompile(`\$\{?__(rate_interval|interval|range)\}?`)
)

// Queries returns every PromQL expression of the dashboard, each with a name that says where it
// is (for messages): panel targets, annotation queries, and the PromQL inside query variables
// (label_values(<expr>, label), query_result(<expr>)); label_values(label) reads no metric.
// Grafana's $__rate_interval, $__interval and $__range become 5m; other variables are expected
// inside label matchers' strings, where PromQL does not look at them.
func (d Dashboard) Queries() []Query {
	var out []Query
	add := func(where, expr string) {
		out = append(out, Query{ID: d.Key + ": " + where, Expr: intervalVars.ReplaceAllString(expr, "5m")})
	}
	for _, p := range d.Panels {
		for i, e := range p.Exprs {
			add(fmt.Sprintf("panel %q target %d", p.Title, i+1), e)
		}
	}
	for i, a := range d.Annotations {
		add(fmt.Sprintf("annotation %d", i+1), a)
	}
	for _, v := range d.Variables {
		if v.Type != "query" {
			continue
		}
		if m := labelValues.FindStringSubmatch(v.Query); m != nil {
			add("variable $"+v.Name, m[1])
		} else if m := queryResult.FindStringSubmatch(v.Query); m != nil {
			add("variable $"+v.Name, m[1])
		}
	}
	return out
}
