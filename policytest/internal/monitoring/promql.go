package monitoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
)

// Query is one PromQL expression and where it is written.
type Query struct {
	ID   string `json:"id"`
	Expr string `json:"expr"`
}

// Parsed is what Prometheus's parser says of a Query: a parse error, or the metric names its
// selectors read and the selectors that name no metric.
type Parsed struct {
	ID      string   `json:"id"`
	Error   string   `json:"error"`
	Metrics []string `json:"metrics"`
	Unnamed []string `json:"unnamed"`
}

// Parse runs promql-names (tools/simulate/cmd/promql-names: Prometheus's own parser at the
// version promtool is built from) once over all queries and returns its verdicts in order.
func Parse(promqlNames string, queries []Query) ([]Parsed, error) {
	in, err := json.Marshal(queries)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(promqlNames)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %v: %s", promqlNames, err, stderr.String())
	}
	var out []Parsed
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("%s: %v", promqlNames, err)
	}
	if len(out) != len(queries) {
		return nil, fmt.Errorf("%s answered %d of %d queries", promqlNames, len(out), len(queries))
	}
	return out, nil
}

// RuleQueries returns the expression of every rule of the environment, named by object, group
// and rule.
func (e *Env) RuleQueries() []Query {
	var out []Query
	for _, o := range e.Rules {
		for _, g := range o.Groups {
			for _, r := range g.Rules {
				name := r.Alert
				if name == "" {
					name = r.Record
				}
				out = append(out, Query{ID: fmt.Sprintf("PrometheusRule %s, group %s, rule %s", o.Name, g.Name, name), Expr: r.Expr})
			}
		}
	}
	return out
}
