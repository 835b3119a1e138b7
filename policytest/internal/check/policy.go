package check

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"
)

// Policies are the Rego policies of policy/ (with their data, policy/exceptions.yaml), loaded
// the way `opa test policy/` loads them.
type Policies struct {
	query rego.PreparedEvalQuery
}

// Evaluation is what the policies say about one cluster: the findings no exception excuses, and
// how many findings each entry of policy/exceptions.yaml (by index) excused.
type Evaluation struct {
	Findings []render.Finding
	Excused  map[int]int
}

// LoadPolicies compiles every module under dir; the query collects the findings of every
// package's `deny` set under data.cloudlab, each with the policy/exceptions.yaml entries that
// excuse it (data.lib.excuses).
func LoadPolicies(ctx context.Context, dir string) (*Policies, error) {
	res, err := loader.NewFileLoader().All([]string{dir})
	if err != nil {
		return nil, err
	}
	store, err := res.Store()
	if err != nil {
		return nil, err
	}
	opts := []func(*rego.Rego){rego.Query("f := data.cloudlab[policy].deny[_]; by := [i | some i, e in data.exceptions; data.lib.excuses(e, policy, f)]"), rego.Store(store)}
	for _, m := range res.ParsedModules() {
		opts = append(opts, rego.ParsedModule(m))
	}
	q, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, err
	}
	return &Policies{query: q}, nil
}

// PolicyInput is what every policy sees: one whole cluster.
type PolicyInput struct {
	Cluster       string       `json:"cluster"`
	Objects       []PolicyItem `json:"objects"`
	ClusterScoped []string     `json:"cluster_scoped"`
}

// PolicyItem is one rendered object and the Application that deploys it.
type PolicyItem struct {
	App string         `json:"app"`
	Obj map[string]any `json:"obj"`
}

// Input builds the policy input of a cluster: every object its Applications render, the
// upstream charts' included.
func Input(c *render.Cluster, scopes Scopes) PolicyInput {
	in := PolicyInput{Cluster: c.Name, ClusterScoped: scopes.Kinds()}
	sort.Strings(in.ClusterScoped)
	for _, o := range c.Bootstrap {
		in.Objects = append(in.Objects, PolicyItem{App: render.RootName, Obj: o.Object})
	}
	for _, a := range c.AllApps() {
		for _, o := range a.Objects {
			in.Objects = append(in.Objects, PolicyItem{App: a.Name(), Obj: o.Object})
		}
	}
	return in
}

// Evaluate runs every policy on one cluster.
func (p *Policies) Evaluate(ctx context.Context, c *render.Cluster, scopes Scopes) (*Evaluation, error) {
	// Through JSON, so Rego sees exactly the numbers and strings a YAML reader would.
	js, err := json.Marshal(Input(c, scopes))
	if err != nil {
		return nil, err
	}
	var input any
	if err := json.Unmarshal(js, &input); err != nil {
		return nil, err
	}
	rs, err := p.query.Eval(ctx, rego.EvalInput(input))
	if err != nil {
		return nil, err
	}
	ev := &Evaluation{Excused: map[int]int{}}
	for _, r := range rs {
		f, ok := r.Bindings["f"].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("policy %v: a deny entry must be lib.finding(...), got %v", r.Bindings["policy"], r.Bindings["f"])
		}
		if by, _ := r.Bindings["by"].([]any); len(by) > 0 {
			for _, i := range by {
				n, _ := i.(json.Number).Int64()
				ev.Excused[int(n)]++
			}
			continue
		}
		str := func(k string) string { s, _ := f[k].(string); return s }
		ev.Findings = append(ev.Findings, render.Finding{
			Cluster: c.Name, App: str("app"), Kind: str("kind"), Namespace: str("namespace"), Name: str("name"),
			Check: fmt.Sprint(r.Bindings["policy"]), Message: str("msg"),
		})
	}
	sort.Slice(ev.Findings, func(i, j int) bool { return ev.Findings[i].String() < ev.Findings[j].String() })
	return ev, nil
}

// RegoTests runs the *_test.rego files of dir exactly as `opa test dir` does and returns the
// name of every test that did not pass, with its reason.
// passed counts the passing tests per package (e.g. "data.cloudlab.pdb_test").
func RegoTests(ctx context.Context, dir string) (passed map[string]int, failed []string, err error) {
	results, err := tester.Run(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	passed = map[string]int{}
	for _, r := range results {
		switch {
		case r.Error != nil:
			failed = append(failed, fmt.Sprintf("%s.%s: error: %v", r.Package, r.Name, r.Error))
		case r.Fail:
			failed = append(failed, fmt.Sprintf("%s.%s: FAIL", r.Package, r.Name))
		case r.Skip:
			failed = append(failed, fmt.Sprintf("%s.%s: skipped (todo_ tests are not allowed)", r.Package, r.Name))
		default:
			passed[r.Package]++
		}
	}
	return passed, failed, nil
}
