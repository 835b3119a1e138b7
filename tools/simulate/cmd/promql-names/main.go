// Command promql-names parses PromQL expressions with Prometheus's own parser (the version
// promtool is built from, tools/simulate/go.mod) and says which metric names each one reads.
//
// Input, on stdin: a JSON array of {"id": string, "expr": string}.
// Output, on stdout: a JSON array of the same length and order, each
//
//	{"id": string, "error": string, "metrics": [string], "unnamed": [string]}
//
// error is the parser's message when the expression does not parse (metrics is then empty);
// metrics are the names of every vector and matrix selector, sorted and without duplicates;
// unnamed are the selectors that name no metric (`{job="x"}`, `{__name__=~"a|b"}`), which a
// caller cannot check against a list of exported names. The exit status is 0 unless stdin is
// not such a JSON array; a query that does not parse is a result, not a failure.
//
// The policytest module cannot import the parser itself: Prometheus needs k8s.io 0.35 and the
// root module is held at 0.31 by argo-cd v2 (tools/simulate/go.mod).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// promql parses with the options promtool and Prometheus use by default: no experimental
// functions, which Prometheus itself would reject without --enable-feature.
var promql = parser.NewParser(parser.Options{})

type query struct {
	ID   string `json:"id"`
	Expr string `json:"expr"`
}

type result struct {
	ID      string   `json:"id"`
	Error   string   `json:"error,omitempty"`
	Metrics []string `json:"metrics"`
	Unnamed []string `json:"unnamed,omitempty"`
}

func main() {
	var in []query
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "promql-names: stdin must be a JSON array of {\"id\", \"expr\"}:", err)
		os.Exit(2)
	}
	out := make([]result, 0, len(in))
	for _, q := range in {
		out = append(out, names(q))
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "promql-names:", err)
		os.Exit(1)
	}
}

// names parses one expression and collects the metric names of its selectors.
func names(q query) result {
	r := result{ID: q.ID, Metrics: []string{}}
	expr, err := promql.ParseExpr(q.Expr)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	seen := map[string]bool{}
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
		}
		if name == "" {
			r.Unnamed = append(r.Unnamed, vs.String())
			return nil
		}
		if !seen[name] {
			seen[name] = true
			r.Metrics = append(r.Metrics, name)
		}
		return nil
	})
	sort.Strings(r.Metrics)
	return r
}
