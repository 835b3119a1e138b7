package policytest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"github.com/cloudlab/platform/policytest/internal/check"
	"github.com/cloudlab/platform/policytest/internal/monitoring"
	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The observability of every environment (clusters/<env>/monitoring/, docs/observability.md).
// The Application monitoring deploys clusters/<env>/monitoring (TestClusters checks it with every
// other Application); these tests also build the folders themselves, to read the rules,
// dashboards and routing they hold (monitoring.Build).

var monitoringEnvs = []string{"dev", "staging", "prod"}

const (
	monitoringTestsDir = "../platform/monitoring/tests"
	metricListsDir     = "metrics"
)

var (
	monitoringOnce  sync.Once
	monitoringBuilt map[string]*monitoring.Env
	monitoringErr   error
)

// monitoringEnv builds every environment's monitoring once per test binary.
func monitoringEnv(t *testing.T, env string) *monitoring.Env {
	t.Helper()
	monitoringOnce.Do(func() {
		monitoringBuilt = map[string]*monitoring.Env{}
		for _, e := range monitoringEnvs {
			b, err := monitoring.Build("..", e)
			if err != nil {
				monitoringErr = err
				return
			}
			monitoringBuilt[e] = b
		}
	})
	require.NoError(t, monitoringErr)
	return monitoringBuilt[env]
}

func toolPath(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set: run the tests with `make verify`, which builds the tools and sets it", env)
	}
	return p
}

// TestMonitoringObjects: every environment has at least one PrometheusRule per store and the SLO
// rules of the services, a dashboard per store plus the services, mesh and platform dashboards,
// one global AlertmanagerConfig; every object passes strict schema validation (Kubernetes 1.32 and
// the vendored CRDs) and every policy of policy/.
func TestMonitoringObjects(t *testing.T) {
	stores := []string{"postgresql", "redis", "clickhouse", "elasticsearch", "kafka", "schema-registry"}
	var clusters []*render.Cluster
	for _, env := range monitoringEnvs {
		e := monitoringEnv(t, env)
		rules := map[string]bool{}
		for _, r := range e.Rules {
			rules[r.Name] = true
			assert.Equal(t, "kube-prometheus-stack", r.Labels["release"], "%s: PrometheusRule %s: label release must name the kube-prometheus-stack release (the chart's default ruleSelector)", env, r.Name)
		}
		for _, s := range stores {
			assert.True(t, rules[s], "%s: no PrometheusRule %s: every store has its rules", env, s)
		}
		assert.True(t, rules["services-slo"], "%s: no PrometheusRule services-slo", env)
		dashboards := map[string]bool{}
		uids := map[string]string{}
		for _, d := range e.Dashboards {
			dashboards[strings.TrimSuffix(d.Key, ".json")] = true
			if other, dup := uids[d.UID]; dup {
				t.Errorf("%s: dashboards %s and %s share uid %q", env, other, d.Key, d.UID)
			}
			uids[d.UID] = d.Key
			assert.NotEmpty(t, d.Panels, "%s: dashboard %s has no panels", env, d.Key)
			for _, p := range d.Panels {
				assert.NotEmpty(t, p.Exprs, "%s: dashboard %s panel %q queries nothing", env, d.Key, p.Title)
			}
		}
		for _, want := range append([]string{"services", "mesh", "platform"}, stores...) {
			assert.True(t, dashboards[want], "%s: no dashboard %s.json in a ConfigMap labelled %s=%q", env, want, monitoring.SidecarLabel, monitoring.SidecarLabelValue)
		}
		require.NotNil(t, e.Alertmanager, "%s: no AlertmanagerConfig", env)
		clusters = append(clusters, &render.Cluster{
			Name: env,
			Root: &render.App{Application: &v1alpha1.Application{ObjectMeta: metav1.ObjectMeta{Name: "monitoring", Namespace: "argocd"}}, Objects: e.Objects},
		})
	}
	for _, d := range monitoringEnv(t, "prod").Dashboards {
		if d.Key != "services.json" {
			continue
		}
		templated := false
		for _, v := range d.Variables {
			templated = templated || (v.Name == "service" && v.Type == "query")
		}
		assert.True(t, templated, "services.json must be templated by a query variable $service")
	}

	// Validated against the CRDs each environment's Applications install (kube-prometheus-stack's).
	rendered := map[string]*render.Cluster{}
	for _, c := range repo(t).Clusters {
		rendered[c.Name] = c
	}
	for _, m := range clusters {
		c, ok := rendered[m.Name]
		require.True(t, ok, "cluster %s is not rendered", m.Name)
		findings, err := check.Validate(toolPath(t, "KUBECTL_VALIDATE"), KubeVersion, check.CRDs(c), []*render.Cluster{m})
		require.NoError(t, err)
		for _, f := range findings {
			t.Error(f.String())
		}
	}
	// The policies judge a whole cluster (the monitoring namespace must exist, ...): each
	// environment as rendered, with the monitoring objects as one more Application. Findings about
	// the other Applications are TestClusters' business.
	policies, err := check.LoadPolicies(context.Background(), "../policy")
	require.NoError(t, err)
	for _, m := range clusters {
		c := rendered[m.Name]
		whole := *c
		whole.Apps = append(append([]*render.App{}, c.Apps...), m.Root)
		ev, err := policies.Evaluate(context.Background(), &whole, check.ScopesOf(&whole))
		require.NoError(t, err)
		findings := ev.Findings
		for _, f := range findings {
			if f.App == m.Root.Name() {
				t.Error(f.String())
			}
		}
	}
}

// TestAlertRules runs promtool for every environment, the environments in parallel:
// `check rules --lint-fatal` on every rule group as the environment renders it (its SLO
// objectives in place), and `test rules` on platform/monitoring/tests/. A rule that does not
// parse, a duplicate, or a unit test whose expectation is not met fails here with promtool's own
// message. A rule file that an earlier environment rendered byte for byte the same is not checked
// again, and a test file whose rule files are all such is not run again: same rules, same tests,
// same result (in practice only the SLO objectives differ between environments).
func TestAlertRules(t *testing.T) {
	promtool := toolPath(t, "PROMTOOL")
	tests, err := monitoring.LoadTestFiles(monitoringTestsDir)
	require.NoError(t, err)
	seen := map[string]bool{} // rule file name + content
	for _, env := range monitoringEnvs {
		e := monitoringEnv(t, env)
		files, err := e.RuleFiles()
		require.NoError(t, err)
		fresh := map[string]bool{}
		check := []string{}
		for name, content := range files {
			key := name + "\x00" + string(content)
			if !seen[key] {
				seen[key] = true
				fresh[name] = true
				check = append(check, name)
			}
		}
		sort.Strings(check)
		var run []monitoring.TestFile
		for _, tf := range tests {
			for _, rf := range tf.RuleFiles {
				if _, ok := files[rf]; !ok {
					t.Errorf("%s: rule_files names %s, which %s does not render (a PrometheusRule <name> is <name>.rules.yaml)", filepath.Base(tf.Path), rf, env)
				}
				if fresh[rf] {
					run = append(run, tf)
					break
				}
			}
		}
		t.Run(env, func(t *testing.T) {
			t.Parallel()
			out, err := e.RunPromtool(promtool, t.TempDir(), run, check)
			if err != nil {
				t.Errorf("%s: %v\n%s", env, err, out)
			}
			t.Logf("%s: checked %d rule files, ran %d test files", env, len(check), len(run))
		})
	}
}

// TestAlertRulesHaveTests: every alert of every environment has a unit test that sees it fire on
// a failing series and one that sees it stay silent on a healthy one, and no test names an alert
// that does not exist.
func TestAlertRulesHaveTests(t *testing.T) {
	tests, err := monitoring.LoadTestFiles(monitoringTestsDir)
	require.NoError(t, err)
	cov := monitoring.CoverageOf(tests)
	alerts := map[string]bool{}
	for _, env := range monitoringEnvs {
		for _, a := range monitoringEnv(t, env).Alerts() {
			alerts[a.Alert] = true
		}
	}
	var names []string
	for a := range alerts {
		names = append(names, a)
	}
	sort.Strings(names)
	for _, m := range cov.Missing(names) {
		t.Error(m)
	}
	t.Logf("%d alerts, each with a firing and a silent unit test", len(names))
}

// TestAlertLabelsAndRunbooks: every alert says how bad it is (severity), who owns it (team), what
// to do (summary, description) and where the runbook is (runbook_url: an existing section of a
// file under docs/).
func TestAlertLabelsAndRunbooks(t *testing.T) {
	severities := map[string]bool{"critical": true, "warning": true, "info": true}
	teams := map[string]bool{"platform": true, "data": true, "services": true}
	seen := map[string]bool{}
	for _, env := range monitoringEnvs {
		for _, a := range monitoringEnv(t, env).Alerts() {
			if seen[a.Alert] {
				continue
			}
			seen[a.Alert] = true
			where := fmt.Sprintf("%s: PrometheusRule %s: alert %s", env, a.Object, a.Alert)
			assert.True(t, severities[a.Labels["severity"]], "%s: label severity %q must be critical, warning or info", where, a.Labels["severity"])
			assert.True(t, teams[a.Labels["team"]], "%s: label team %q must be platform, data or services (Alertmanager routes by it)", where, a.Labels["team"])
			for _, ann := range []string{"summary", "description", "runbook_url"} {
				assert.NotEmpty(t, strings.TrimSpace(a.Annotations[ann]), "%s: annotation %s is missing", where, ann)
			}
			if err := monitoring.CheckRunbookURL("..", a.Annotations["runbook_url"]); err != nil {
				t.Errorf("%s: %v", where, err)
			}
			if v := a.Labels["impact"]; v != "" {
				assert.Equal(t, "store-unavailable", v, "%s: label impact has one value, store-unavailable", where)
				assert.Equal(t, "critical", a.Labels["severity"], "%s: a store-unavailable alert is critical", where)
			}
		}
	}
}

// TestPromQLMetricsExist parses every expression of every rule and every dashboard query with
// Prometheus's parser and checks each metric it reads against the vendored lists of what our
// exporters export (policytest/metrics/, README.md there) and the names our recording rules make.
func TestPromQLMetricsExist(t *testing.T) {
	exported, err := monitoring.LoadExported(metricListsDir)
	require.NoError(t, err)
	var queries []monitoring.Query
	seen := map[string]bool{}
	for _, env := range monitoringEnvs {
		e := monitoringEnv(t, env)
		exported.Add(e.Recorded(), "recording rules of platform/monitoring")
		add := func(qs []monitoring.Query) {
			for _, q := range qs {
				if !seen[q.ID+"\x00"+q.Expr] {
					seen[q.ID+"\x00"+q.Expr] = true
					queries = append(queries, monitoring.Query{ID: env + ": " + q.ID, Expr: q.Expr})
				}
			}
		}
		add(e.RuleQueries())
		for _, d := range e.Dashboards {
			add(d.Queries())
		}
	}
	parsed, err := monitoring.Parse(toolPath(t, "PROMQL_NAMES"), queries)
	require.NoError(t, err)
	for _, m := range exported.Unknown(parsed) {
		t.Error(m)
	}
	t.Logf("%d PromQL expressions parsed and checked against %d metric lists", len(queries), len(exported.Lists()))
}

// TestPromQLCheckCatchesFaults proves the metric check can fail: a query that does not parse, a
// metric nothing exports, and a selector without a metric name are each reported, and an existing
// name is not.
func TestPromQLCheckCatchesFaults(t *testing.T) {
	exported, err := monitoring.LoadExported(metricListsDir)
	require.NoError(t, err)
	parsed, err := monitoring.Parse(toolPath(t, "PROMQL_NAMES"), []monitoring.Query{
		{ID: "good", Expr: `sum by (pod) (rate(pg_stat_database_xact_commit{namespace="cloudlab-data"}[5m])) / on (pod) pg_settings_max_connections`},
		{ID: "broken", Expr: `rate(pg_up[5m]`},
		{ID: "unknown", Expr: `pg_replication_lag{namespace="cloudlab-data"} > 10`},
		{ID: "unnamed", Expr: `{job="x"}`},
	})
	require.NoError(t, err)
	got := strings.Join(exported.Unknown(parsed), "\n")
	assert.NotContains(t, got, "good:")
	assert.Contains(t, got, "broken: does not parse")
	assert.Contains(t, got, "unknown: metric pg_replication_lag is exported by nothing we deploy")
	assert.Contains(t, got, `unnamed: selector {job="x"} names no metric`)
}

// TestMonitoringChecksCatchFaults proves the other checks can fail: a runbook anchor that does
// not exist, and an alert without a silent (or any) unit test.
func TestMonitoringChecksCatchFaults(t *testing.T) {
	good := monitoring.RunbookBase + "docs/runbooks/postgresql.md#postgresqlinstancedown"
	assert.NoError(t, monitoring.CheckRunbookURL("..", good))
	assert.ErrorContains(t, monitoring.CheckRunbookURL("..", monitoring.RunbookBase+"docs/runbooks/postgresql.md#no-such-section"), "has no heading with anchor #no-such-section")
	assert.ErrorContains(t, monitoring.CheckRunbookURL("..", monitoring.RunbookBase+"docs/runbooks/nothing.md#x"), "no such file")
	assert.ErrorContains(t, monitoring.CheckRunbookURL("..", "https://runbooks.example.com/x#y"), "does not start with")

	tests, err := monitoring.LoadTestFiles(monitoringTestsDir)
	require.NoError(t, err)
	missing := monitoring.CoverageOf(tests).Missing([]string{"PostgreSQLInstanceDown", "AlertNobodyTests"})
	assert.Equal(t, []string{
		"alert AlertNobodyTests: no unit test sees it fire (alert_rule_test with exp_alerts)",
		"alert AlertNobodyTests: no unit test sees it stay silent on a healthy series (alert_rule_test without exp_alerts)",
	}, filterPrefix(missing, "alert AlertNobodyTests"))
}

func filterPrefix(in []string, prefix string) []string {
	var out []string
	for _, s := range in {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// TestPromtoolCatchesFailingRuleTest proves that a unit test whose expectation is wrong fails
// TestAlertRules: the same rules with a test that expects PostgreSQLInstanceDown on a healthy
// series make promtool fail.
func TestPromtoolCatchesFailingRuleTest(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "wrong.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(`rule_files: [postgresql.rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'pg_up{namespace="cloudlab-data", pod="postgresql-0"}'
        values: '1x10'
    alert_rule_test:
      - eval_time: 10m
        alertname: PostgreSQLInstanceDown
        exp_alerts:
          - exp_labels: {severity: warning, team: data, store: postgresql, namespace: cloudlab-data, pod: postgresql-0}
`), 0o644))
	tests := []monitoring.TestFile{{Path: bad}}
	out, err := monitoringEnv(t, "prod").RunPromtool(toolPath(t, "PROMTOOL"), dir, tests, []string{})
	assert.ErrorContains(t, err, "promtool test rules")
	assert.Contains(t, out, "PostgreSQLInstanceDown")
}

// TestSLOObjectives: every environment sets both objectives, each a ratio in (0.9, 1), and an
// environment closer to users never has a looser objective than one further away.
func TestSLOObjectives(t *testing.T) {
	objectives := map[string]map[string]float64{}
	for _, env := range monitoringEnvs {
		objectives[env] = map[string]float64{}
		for _, r := range monitoringEnv(t, env).Rules {
			for _, g := range r.Groups {
				for _, rule := range g.Rules {
					if !strings.HasPrefix(rule.Record, "cloudlab:slo_") || !strings.HasSuffix(rule.Record, "_objective:ratio") {
						continue
					}
					var v float64
					_, err := fmt.Sscanf(strings.TrimSpace(rule.Expr), "%g", &v)
					if assert.NoError(t, err, "%s: %s must be a number, is %q", env, rule.Record, rule.Expr) {
						assert.True(t, v > 0.9 && v < 1, "%s: %s = %g is not a ratio in (0.9, 1)", env, rule.Record, v)
					}
					objectives[env][rule.Record] = v
				}
			}
		}
		assert.Len(t, objectives[env], 2, "%s: both objectives (availability and latency) are set", env)
	}
	for name := range objectives["prod"] {
		assert.GreaterOrEqual(t, objectives["prod"][name], objectives["staging"][name], "%s: prod's objective is at least staging's", name)
		assert.GreaterOrEqual(t, objectives["staging"][name], objectives["dev"][name], "%s: staging's objective is at least dev's", name)
	}
}

var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestObservabilityDocLinks: every relative link of the runbooks, docs/observability.md and
// docs/incident-response.md points at a file or folder that exists and, with #anchor, at a heading
// of that file.
func TestObservabilityDocLinks(t *testing.T) {
	docs, err := filepath.Glob("../docs/runbooks/*.md")
	require.NoError(t, err)
	docs = append(docs, "../docs/observability.md", "../docs/incident-response.md", "metrics/README.md")
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		require.NoError(t, err)
		for _, m := range markdownLink.FindAllStringSubmatch(string(b), -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(link, "#")
			target := doc
			if path != "" {
				target = filepath.Join(filepath.Dir(doc), filepath.FromSlash(path))
			}
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s: link %s: %s does not exist", doc, link, target)
				continue
			}
			if anchor == "" {
				continue
			}
			anchors, err := monitoring.Anchors(target)
			require.NoError(t, err)
			assert.True(t, anchors[anchor], "%s: link %s: %s has no heading with anchor #%s", doc, link, target, anchor)
		}
	}
}
