package policytest

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The data tier is one local chart per store (platform/data/<store>), rendered for each
// environment by clusters/<env>/data/<store>: a kustomization that inflates the chart with the
// folder's values.yaml (docs/decisions/0050-data-tier-charts.md). These tests hold that shape:
// every environment difference is a value by field name, and every count-derived address is
// derived by the chart, never typed.

const dataChartHome = "../platform/data"

// dataCharts are the stores' charts: the folders of platform/data holding a Chart.yaml.
func dataCharts(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dataChartHome, "*", "Chart.yaml"))
	require.NoError(t, err)
	var out []string
	for _, f := range files {
		out = append(out, filepath.Base(filepath.Dir(f)))
	}
	require.Len(t, out, 7, "one chart per store: postgresql, redis, clickhouse, elasticsearch, kafka, schema-registry, kafka-ui")
	return out
}

// dataValues is the values file of a store in an environment.
func dataValues(env, store string) string {
	return filepath.Join("..", "clusters", env, "data", store, "values.yaml")
}

// helmTemplate renders a data chart with helm directly (not through kustomize: the ConfigMaps
// keep their <name>-content names), with a values file (an environment's: dataValues) and extra
// arguments.
func helmTemplate(t *testing.T, bin, store, values string, args ...string) ([]*unstructured.Unstructured, string, error) {
	t.Helper()
	all := append([]string{"template", store, filepath.Join(dataChartHome, store), "-n", dataNamespace,
		"--kube-version", "1.32.0", "-f", values}, args...)
	out, err := helm(t, bin, all...)
	if err != nil {
		return nil, out, err
	}
	objs, err := render.DecodeObjects([]byte(out))
	return objs, out, err
}

var clusterNames = []string{"dev", "staging", "prod"}

// TestDataChartsLintAndHelmMajors: each store's chart passes `helm lint --strict` with each
// environment's values, and Helm 3 and Helm 4 render the same objects from dev's and prod's (the
// single-member and the many-member shapes; Helm 4 separates documents with one more blank line,
// so objects are compared, not bytes).
func TestDataChartsLintAndHelmMajors(t *testing.T) {
	bins := helmBinaries(t)
	for _, store := range dataCharts(t) {
		for _, env := range clusterNames {
			t.Run(store+"/"+env, func(t *testing.T) {
				t.Parallel()
				out, err := helm(t, bins["helm3"], "lint", "--strict", filepath.Join(dataChartHome, store), "-f", dataValues(env, store))
				assert.NoError(t, err, "helm lint:\n%s", out)
				if env == "staging" {
					return // its shapes are prod's or dev's: Helm 4 is compared on those two
				}
				h3, out, err := helmTemplate(t, bins["helm3"], store, dataValues(env, store))
				require.NoError(t, err, out)
				h4, out, err := helmTemplate(t, bins["helm4"], store, dataValues(env, store))
				require.NoError(t, err, out)
				assert.Equal(t, h3, h4, "Helm 3 and Helm 4 render different objects")
			})
		}
	}
}

// changedPaths lists where two rendered object sets differ: Kind/name of an object only in one of
// them (+ added, - removed), or Kind/name:path of a field that differs (lists compared whole).
func changedPaths(before, after []*unstructured.Unstructured) []string {
	index := func(objs []*unstructured.Unstructured) map[string]map[string]any {
		m := map[string]map[string]any{}
		for _, o := range objs {
			m[o.GetKind()+"/"+o.GetName()] = o.Object
		}
		return m
	}
	a, b := index(before), index(after)
	var out []string
	var walk func(id, path string, x, y any)
	walk = func(id, path string, x, y any) {
		xm, xok := x.(map[string]any)
		ym, yok := y.(map[string]any)
		if !xok || !yok {
			if !reflect.DeepEqual(x, y) {
				out = append(out, id+":"+strings.TrimPrefix(path, "."))
			}
			return
		}
		keys := map[string]bool{}
		for k := range xm {
			keys[k] = true
		}
		for k := range ym {
			keys[k] = true
		}
		for k := range keys {
			walk(id, path+"."+k, xm[k], ym[k])
		}
	}
	for id, x := range a {
		if y, ok := b[id]; ok {
			walk(id, "", x, y)
		} else {
			out = append(out, "-"+id)
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			out = append(out, "+"+id)
		}
	}
	sort.Strings(out)
	return out
}

func configMapData(t *testing.T, objs []*unstructured.Unstructured, name, key string) string {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && o.GetName() == name {
			v, ok, _ := unstructured.NestedString(o.Object, "data", key)
			require.True(t, ok, "ConfigMap %s has no key %s", name, key)
			return v
		}
	}
	t.Fatalf("no ConfigMap %s", name)
	return ""
}

// TestDataChartsDeriveFromCounts: changing one count in an environment's values changes exactly
// the objects and the addresses that follow from it — replicas, the members a quorum is formed
// from, the servers' lists of peers — and nothing else: no address is typed twice.
func TestDataChartsDeriveFromCounts(t *testing.T) {
	bin := helmBinaries(t)["helm3"]
	cases := countChanges()
	for _, tc := range cases {
		t.Run(tc.store+"/"+tc.name, func(t *testing.T) {
			t.Parallel()
			env := "prod"
			if tc.name == "combined nodes" {
				env = "staging"
			}
			before, out, err := helmTemplate(t, bin, tc.store, dataValues(env, tc.store))
			require.NoError(t, err, out)
			var args []string
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			after, out, err := helmTemplate(t, bin, tc.store, dataValues(env, tc.store), args...)
			require.NoError(t, err, out)
			assert.Equal(t, tc.changed, changedPaths(before, after), "%s with %v: what changed", tc.store, tc.set)
			if tc.check != nil {
				tc.check(t, after)
			}
		})
	}
}

// countChange is one count changed with helm --set on prod's values (staging's for "combined
// nodes"), the objects and fields it must change (changedPaths' form: "+Kind/name" added,
// "-Kind/name" removed, "Kind/name:field" changed) and what the new addresses must be.
type countChange struct {
	store, name string
	set         []string
	changed     []string
	check       func(t *testing.T, objs []*unstructured.Unstructured)
}

// countChanges are TestDataChartsDeriveFromCounts' cases: one per count a store derives from.
func countChanges() []countChange {
	return []countChange{
		{"kafka", "five controllers", []string{"nodeSets.controller.replicas=5"},
			[]string{"ConfigMap/kafka-content:data.quorum-bootstrap", "StatefulSet/kafka-controller:spec.replicas"},
			func(t *testing.T, objs []*unstructured.Unstructured) {
				bootstrap := strings.Split(configMapData(t, objs, "kafka-content", "quorum-bootstrap"), ",")
				require.Len(t, bootstrap, 5)
				for i := range 5 {
					host := fmt.Sprintf("kafka-controller-%d.kafka-headless.%s.svc.cluster.local:9093", i, dataNamespace)
					assert.Equal(t, host, bootstrap[i])
				}
			}},
		{"kafka", "combined nodes", []string{"nodeSets.node.replicas=5"}, // staging's shape
			[]string{"ConfigMap/kafka-content:data.quorum-bootstrap", "StatefulSet/kafka-node:spec.replicas"},
			nil},
		{"clickhouse", "five Keepers", []string{"keeper.replicas=5"},
			[]string{"ConfigMap/clickhouse-keeper-content:data.raft.xml", "ConfigMap/clickhouse-server-content:data.cluster.xml", "StatefulSet/clickhouse-keeper:spec.replicas"},
			func(t *testing.T, objs []*unstructured.Unstructured) {
				raft := configMapData(t, objs, "clickhouse-keeper-content", "raft.xml")
				servers := configMapData(t, objs, "clickhouse-server-content", "cluster.xml")
				for i := range 5 {
					host := fmt.Sprintf("clickhouse-keeper-%d.clickhouse-keeper-headless.%s.svc.cluster.local", i, dataNamespace)
					assert.Contains(t, raft, fmt.Sprintf("<server><id>%d</id><hostname>%s</hostname>", i+1, host))
					assert.Contains(t, servers, "<node><host>"+host+"</host>")
				}
				assert.Equal(t, 5, strings.Count(raft, "<server>"))
			}},
		{"clickhouse", "a third shard", []string{"server.shards=3"},
			[]string{"+PodDisruptionBudget/clickhouse-shard-2", "+Service/clickhouse-shard-2", "+StatefulSet/clickhouse-shard-2", "ConfigMap/clickhouse-server-content:data.cluster.xml"},
			func(t *testing.T, objs []*unstructured.Unstructured) {
				servers := configMapData(t, objs, "clickhouse-server-content", "cluster.xml")
				assert.Equal(t, 3, strings.Count(servers, "<shard>"))
				assert.Contains(t, servers, "<host>clickhouse-shard-2-1.clickhouse-shard-2."+dataNamespace+".svc.cluster.local</host>")
			}},
		{"clickhouse", "three replicas per shard", []string{"server.replicas=3"},
			[]string{"ConfigMap/clickhouse-server-content:data.cluster.xml", "StatefulSet/clickhouse-shard-0:spec.replicas", "StatefulSet/clickhouse-shard-1:spec.replicas"},
			func(t *testing.T, objs []*unstructured.Unstructured) {
				assert.Equal(t, 6, strings.Count(configMapData(t, objs, "clickhouse-server-content", "cluster.xml"), "<replica>"))
			}},
		{"elasticsearch", "five masters", []string{"nodeSets.master.replicas=5"},
			[]string{"ConfigMap/elasticsearch-content:data.initial-master-nodes", "StatefulSet/elasticsearch-master:spec.replicas"},
			func(t *testing.T, objs []*unstructured.Unstructured) {
				assert.Equal(t, "elasticsearch-master-0,elasticsearch-master-1,elasticsearch-master-2,elasticsearch-master-3,elasticsearch-master-4",
					configMapData(t, objs, "elasticsearch-content", "initial-master-nodes"))
				assert.Equal(t, "elasticsearch-master", configMapData(t, objs, "elasticsearch-content", "seed-hosts"))
			}},
		{"redis", "two replicas per master", []string{"replicasPerMaster=2"},
			[]string{"ConfigMap/redis-content:data.nodes", "ConfigMap/redis-content:data.replicas-per-master", "StatefulSet/redis:spec.replicas"},
			func(t *testing.T, objs []*unstructured.Unstructured) {
				assert.Equal(t, "9", configMapData(t, objs, "redis-content", "nodes"))
			}},
		{"schema-registry", "one replica", []string{"replicas=1"},
			[]string{"-PodDisruptionBudget/schema-registry", "Deployment/schema-registry:spec.replicas"}, nil},
		// prepare.sh learns the instances (its peers) and the primary from the init container's env.
		{"postgresql", "one instance", []string{"replicas=1"},
			[]string{"-PodDisruptionBudget/postgresql", "StatefulSet/postgresql:spec.replicas", "StatefulSet/postgresql:spec.template.spec.initContainers"}, nil},
		{"postgresql", "a failover to postgresql-1", []string{"primary=postgresql-1"},
			[]string{"Service/postgresql:spec.selector.statefulset.kubernetes.io/pod-name", "StatefulSet/postgresql:spec.template.spec.initContainers"}, nil},
	}
}

// valuesWithout writes a copy of a values file without one key (a dotted path) and returns its
// path, to be given instead of the original (helm merges values files: a later one cannot drop
// a key).
func valuesWithout(t *testing.T, file, key string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, yaml.Unmarshal(data, &v))
	parts := strings.Split(key, ".")
	m := v
	for _, p := range parts[:len(parts)-1] {
		m = m[p].(map[string]any)
	}
	require.Contains(t, m, parts[len(parts)-1], "%s has no %s", file, key)
	delete(m, parts[len(parts)-1])
	out, err := yaml.Marshal(v)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "values.yaml")
	require.NoError(t, os.WriteFile(path, out, 0o644))
	return path
}

// TestDataChartsRejectBadValues: a value an environment forgot ("-key": the environment's values
// without it), misspelt or got wrong fails the render, with Helm 3 and Helm 4, with a message
// that names it.
func TestDataChartsRejectBadValues(t *testing.T) {
	bins := helmBinaries(t)
	cases := []struct {
		store, name string
		set         []string
		want        string
		env         string // prod unless set
	}{
		{"postgresql", "an environment without replicas", []string{"-replicas"}, "missing property 'replicas'", ""},
		{"postgresql", "a misspelt key", []string{"replica=3"}, "additional properties 'replica' not allowed", ""},
		{"postgresql", "zone spread neither required nor preferred", []string{"zoneSpread=DoNotSchedule"}, "at '/zoneSpread'", ""},
		{"postgresql", "a slot bound without a unit", []string{"maxSlotWalKeepSize=10"}, "at '/maxSlotWalKeepSize'", ""},
		{"postgresql", "a primary beyond the instances", []string{"primary=postgresql-3"}, "postgresql: primary postgresql-3 is not one of the 3 instances", ""},
		{"redis", "two masters", []string{"masters=2"}, "redis: masters: 2 cannot form a Redis Cluster", ""},
		{"redis", "a single node with replicas", []string{"masters=1"}, "redis: masters: 1 is a single node without Redis Cluster, which has no replicas", ""},
		{"kafka", "a broker set beside combined nodes", []string{"nodeSets.node.replicas=1", "nodeSets.node.heap=1g", "nodeSets.node.storage=1Gi", "nodeSets.node.resources.requests.cpu=1", "nodeSets.node.resources.limits.cpu=1"},
			"kafka: nodeSets has [broker controller node]", ""},
		{"kafka", "an environment without its cluster id", []string{"-clusterId"}, "missing property 'clusterId'", ""},
		{"kafka", "more copies than brokers", []string{"replicationFactor=4"}, "kafka: replicationFactor 4 is more than the 3 brokers", ""},
		{"kafka", "min ISR equal to the copies", []string{"minInsyncReplicas=3"}, "kafka: minInsyncReplicas 3 with replicationFactor 3", ""},
		{"kafka", "a heap without a unit", []string{"nodeSets.broker.heap=1024"}, "at '/nodeSets/broker/heap'", ""},
		{"elasticsearch", "two master-eligible sets", []string{"nodeSets.data.roles={master,data}"}, "elasticsearch: exactly one node set must have the role master", ""},
		{"elasticsearch", "an unknown role", []string{"nodeSets.data.roles={data,ml}"}, "at '/nodeSets/data/roles/1'", ""},
		{"elasticsearch", "snapshots without a bucket", []string{"backup.enabled=true"}, "at '/backup': missing properties 'bucket', 'roleArn'", "dev"},
		{"elasticsearch", "a role that is no IAM role", []string{"backup.roleArn=cloudlab-prod-snapshots"}, "at '/backup/roleArn'", ""},
		{"clickhouse", "Keeper without storage", []string{"-keeper.storage"}, "at '/keeper': missing property 'storage'", ""},
		{"schema-registry", "no replication factor for _schemas", []string{"-topicReplicationFactor"}, "missing property 'topicReplicationFactor'", ""},
		{"kafka-ui", "read-only as a string", []string{"readOnly=yes"}, "at '/readOnly'", ""},
	}
	for _, tc := range cases {
		for name, bin := range bins {
			t.Run(tc.store+"/"+tc.name+"/"+name, func(t *testing.T) {
				t.Parallel()
				env := tc.env
				if env == "" {
					env = "prod"
				}
				values := dataValues(env, tc.store)
				var args []string
				for _, s := range tc.set {
					if key, ok := strings.CutPrefix(s, "-"); ok {
						values = valuesWithout(t, values, key)
					} else {
						args = append(args, "--set", s)
					}
				}
				_, out, err := helmTemplate(t, bin, tc.store, values, args...)
				assert.Error(t, err, "rendered although %v is invalid", tc.set)
				assert.Contains(t, out, tc.want, "the message names the value")
			})
		}
	}
}

// The kinds of environment difference the data tier no longer has (issue 13): a JSON-patch path
// that addresses a list by position (reordering the base's env: would silently move it to another
// variable), a placeholder a patch must overwrite, and objects built and then deleted.
var (
	positionalPath = regexp.MustCompile(`path: */[^ ]*/[0-9]+(/|$| )`)
	placeholder    = regexp.MustCompile(`[A-Z]+(-[A-Z]+)*-SET-BY-[A-Z]+`)
	buildDelete    = regexp.MustCompile(`\$patch: *delete`)
)

// TestDataEnvironmentFolders: every clusters/<env>/data/<store>/ is the store's chart and a
// values.yaml — the environment's differences by field name — and no patch, resource or
// generator of its own.
func TestDataEnvironmentFolders(t *testing.T) {
	stores := dataCharts(t)
	for _, env := range clusterNames {
		dirs, err := filepath.Glob(filepath.Join("..", "clusters", env, "data", "*"))
		require.NoError(t, err)
		var got []string
		for _, d := range dirs {
			store := filepath.Base(d)
			got = append(got, store)
			entries, err := os.ReadDir(d)
			require.NoError(t, err)
			var files []string
			for _, e := range entries {
				files = append(files, e.Name())
			}
			assert.Equal(t, []string{"kustomization.yaml", "values.yaml"}, files, "%s: the folder holds the chart's kustomization and the environment's values", d)
			data, err := os.ReadFile(filepath.Join(d, "kustomization.yaml"))
			require.NoError(t, err)
			var k struct {
				HelmGlobals struct {
					ChartHome string `json:"chartHome"`
				} `json:"helmGlobals"`
				HelmCharts []struct {
					Name, ReleaseName, Namespace, ValuesFile string
					ValuesInline                             map[string]any `json:"valuesInline"`
				} `json:"helmCharts"`
				Patches    []any `json:"patches"`
				Resources  []any `json:"resources"`
				Generators []any `json:"configMapGenerator"`
			}
			require.NoError(t, yaml.Unmarshal(data, &k), d)
			assert.Equal(t, "../../../../platform/data", k.HelmGlobals.ChartHome, "%s: chartHome", d)
			if assert.Len(t, k.HelmCharts, 1, "%s: one chart", d) {
				c := k.HelmCharts[0]
				assert.Equal(t, []string{store, store, dataNamespace, "values.yaml"}, []string{c.Name, c.ReleaseName, c.Namespace, c.ValuesFile}, "%s: the chart of the store, with values.yaml", d)
				assert.Empty(t, c.ValuesInline, "%s: values in values.yaml, not inline", d)
			}
			assert.Empty(t, k.Patches, "%s: differences are values, not patches", d)
			assert.Empty(t, k.Resources, "%s: everything comes from the chart", d)
			assert.Empty(t, k.Generators, "%s: ConfigMaps come from the chart", d)
		}
		assert.ElementsMatch(t, stores, got, "%s: one folder per store's chart", env)
	}
}

// TestDataDifferencesByName: nothing in clusters/<env>/data/ or platform/data/ patches a list by
// position, leaves a placeholder, or builds an object to delete it (issue 13's check).
func TestDataDifferencesByName(t *testing.T) {
	var problems []string
	for _, root := range []string{filepath.Join("..", "clusters"), dataChartHome} {
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if root != dataChartHome && !strings.Contains(filepath.ToSlash(path), "/data/") {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for i, line := range strings.Split(string(data), "\n") {
				for what, re := range map[string]*regexp.Regexp{"a JSON-patch path by list position": positionalPath, "a placeholder": placeholder, "a build-then-delete patch": buildDelete} {
					if re.MatchString(line) {
						problems = append(problems, fmt.Sprintf("%s:%d: %s: %s", path, i+1, what, strings.TrimSpace(line)))
					}
				}
			}
			return nil
		})
		require.NoError(t, err)
	}
	assert.Empty(t, problems, "the data tier says every environment difference by name:\n%s", strings.Join(problems, "\n"))
}
