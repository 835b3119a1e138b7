package monitoring

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// TestFile is a promtool unit test file (the fields `promtool test rules` reads).
type TestFile struct {
	Path               string      `json:"-"`
	RuleFiles          []string    `json:"rule_files"`
	EvaluationInterval string      `json:"evaluation_interval,omitempty"`
	GroupEvalOrder     []string    `json:"group_eval_order,omitempty"`
	FuzzyCompare       bool        `json:"fuzzy_compare,omitempty"`
	Tests              []TestGroup `json:"tests"`
}

// TestGroup is one entry of a test file's tests.
type TestGroup struct {
	Name           string          `json:"name,omitempty"`
	Interval       string          `json:"interval,omitempty"`
	InputSeries    []any           `json:"input_series,omitempty"`
	PromQLExprTest []any           `json:"promql_expr_test,omitempty"`
	AlertRuleTest  []AlertRuleTest `json:"alert_rule_test,omitempty"`
	ExternalLabels map[string]any  `json:"external_labels,omitempty"`
	ExternalURL    string          `json:"external_url,omitempty"`
	StartTimestamp any             `json:"start_timestamp,omitempty"`
	FuzzyCompare   bool            `json:"fuzzy_compare,omitempty"`
}

// AlertRuleTest is one expectation: at eval_time, alertname fires exactly exp_alerts (none: it
// must be silent).
type AlertRuleTest struct {
	EvalTime  string `json:"eval_time"`
	Alertname string `json:"alertname"`
	ExpAlerts []any  `json:"exp_alerts,omitempty"`
}

// LoadTestFiles reads every *.yaml of dir as a promtool test file.
func LoadTestFiles(dir string) ([]TestFile, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no promtool test files (*.yaml) in %s", dir)
	}
	var out []TestFile
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var tf TestFile
		if err := yamlUnmarshalStrict(b, &tf); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(p), err)
		}
		tf.Path = p
		out = append(out, tf)
	}
	return out, nil
}

// Coverage is, per alert name, how many expectations see it fire and how many see it silent.
type Coverage map[string]struct{ Fires, Silent int }

// CoverageOf counts the expectations of the test files.
func CoverageOf(files []TestFile) Coverage {
	c := Coverage{}
	for _, f := range files {
		for _, g := range f.Tests {
			for _, a := range g.AlertRuleTest {
				v := c[a.Alertname]
				if len(a.ExpAlerts) > 0 {
					v.Fires++
				} else {
					v.Silent++
				}
				c[a.Alertname] = v
			}
		}
	}
	return c
}

// Missing returns, for every alert that lacks them, what a test must add: an expectation that it
// fires on a failing series and one that it stays silent on a healthy one. Expectations about an
// alert no rule defines are reported too (a renamed alert leaves its tests behind).
func (c Coverage) Missing(alerts []string) []string {
	var out []string
	defined := map[string]bool{}
	for _, a := range alerts {
		defined[a] = true
		v := c[a]
		if v.Fires == 0 {
			out = append(out, fmt.Sprintf("alert %s: no unit test sees it fire (alert_rule_test with exp_alerts)", a))
		}
		if v.Silent == 0 {
			out = append(out, fmt.Sprintf("alert %s: no unit test sees it stay silent on a healthy series (alert_rule_test without exp_alerts)", a))
		}
	}
	for a := range c {
		if !defined[a] {
			out = append(out, fmt.Sprintf("alert %s: tested, but no rule defines it", a))
		}
	}
	sort.Strings(out)
	return out
}
