package policytest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/netpol"
	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The log path of docs/observability.md#logging:
//
//	fluent-bit (DaemonSet, logging) --HTTP 9200--> elasticsearch (observability) <--9200-- kibana, setup Job
const (
	loggingNamespace    = "logging"
	observabilityNS     = "observability"
	loggingRetentionCM  = "logging-retention" // clusters/<env>/logging/elasticsearch, without its hash suffix
	fluentBitConfigKey  = "fluent-bit.conf"
	fluentBitConfigName = "fluent-bit"
)

// loggingRetentionDays is each environment's log retention, in days: what the ILM policy `logs`
// deletes after (docs/observability.md#logging).
var loggingRetentionDays = map[string]int{"dev": 3, "staging": 7, "prod": 30}

// fluentBitSections parses Fluent Bit's classic configuration format: "[SECTION]" headers, then
// "Key Value" lines (https://docs.fluentbit.io/manual/administration/configuring-fluent-bit/classic-mode).
// Keys are lower-cased (Fluent Bit's keys are case-insensitive). Returns the sections in order.
func fluentBitSections(conf string) []map[string]string {
	var out []map[string]string
	for _, line := range strings.Split(conf, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "@"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			out = append(out, map[string]string{"[section]": strings.ToUpper(strings.Trim(line, "[]"))})
		case len(out) > 0:
			k, v, _ := strings.Cut(line, " ")
			out[len(out)-1][strings.ToLower(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// loggingPathProblems checks the log path of one cluster's rendered objects (env: its name) and
// returns what is broken, one sentence each; deployed is false when the cluster does not run
// Fluent Bit (dev, where logging is opt-in).
func loggingPathProblems(env string, objs []*unstructured.Unstructured) (problems []string, deployed bool) {
	t := tracingObjects{all: objs}
	ds := t.one("DaemonSet", loggingNamespace, "fluent-bit")
	if ds == nil {
		return nil, false
	}
	np, err := netpol.New(objs)
	if err != nil {
		return []string{err.Error()}, true
	}
	return append(fluentBitProblems(t, np, ds), loggingStoreProblems(env, t, np)...), true
}

// fluentBitProblems checks Fluent Bit's configuration (its chart's ConfigMap): a tail input of
// the containers' logs, the kubernetes filter parsing JSON lines, and es outputs to the logging
// Elasticsearch with the index names its ILM policy covers, which NetworkPolicies let it reach.
func fluentBitProblems(t tracingObjects, np *netpol.Cluster, ds *unstructured.Unstructured) (problems []string) {
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	cm := t.one("ConfigMap", loggingNamespace, fluentBitConfigName)
	conf, _, _ := unstructured.NestedString(cmOrEmpty(cm).Object, "data", fluentBitConfigKey)
	var outputs, tails int
	kubernetesFilter := false
	for _, s := range fluentBitSections(conf) {
		switch {
		case s["[section]"] == "INPUT" && s["name"] == "tail":
			tails++
			if !strings.HasPrefix(s["path"], "/var/log/containers/") {
				fail("fluent-bit: its tail input reads %q, not the containers' logs under /var/log/containers/", s["path"])
			}
		case s["[section]"] == "FILTER" && s["name"] == "kubernetes":
			kubernetesFilter = true
			if !strings.EqualFold(s["merge_log"], "on") {
				fail("fluent-bit: its kubernetes filter does not parse JSON lines into fields (Merge_Log %q)", s["merge_log"])
			}
		case s["[section]"] == "OUTPUT" && s["name"] == "es":
			outputs++
			port, _ := strconv.Atoi(s["port"])
			es, err := t.resolve(s["host"], int32(port))
			if err != nil {
				fail("fluent-bit ships to %s:%s: %v", s["host"], s["port"], err)
				continue
			}
			if es.host != "elasticsearch."+observabilityNS+".svc.cluster.local" {
				fail("fluent-bit ships to %s, not the dedicated logging Elasticsearch", es.host)
			}
			if s["logstash_prefix"] != "logs" || !strings.EqualFold(s["logstash_format"], "on") {
				fail("fluent-bit writes indices %q (Logstash_Format %s), not logs-YYYY.MM.DD that the ILM policy `logs` covers", s["logstash_prefix"], s["logstash_format"])
			}
			fb, _ := netpol.TemplatePod(ds)
			for _, p := range es.pods {
				if !np.Allowed(fb, p, es.targetPort) {
					fail("fluent-bit: NetworkPolicies block it from %s port %d", s["host"], es.targetPort)
				}
			}
		}
	}
	if tails == 0 || outputs == 0 || !kubernetesFilter {
		fail("fluent-bit (ConfigMap %s/%s key %s): %d tail inputs, %d es outputs, kubernetes filter %v: want at least one of each", loggingNamespace, fluentBitConfigName, fluentBitConfigKey, tails, outputs, kubernetesFilter)
	}
	return problems
}

// loggingStoreProblems checks the rest of the path around the logging Elasticsearch: Kibana and
// the setup Job reach it, the retention is the environment's (env: its name), and Envoy's access
// logs are JSON.
func loggingStoreProblems(env string, t tracingObjects, np *netpol.Cluster) (problems []string) {
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	// Readers and the setup Job reach the same cluster.
	es, err := t.resolve("elasticsearch."+observabilityNS+".svc.cluster.local", 9200)
	if err != nil {
		fail("the logging Elasticsearch: %v", err)
		return problems
	}
	for _, c := range []struct{ kind, name string }{{"Deployment", "kibana"}, {"Job", "logging-elasticsearch-setup"}} {
		w := t.one(c.kind, observabilityNS, c.name)
		if w == nil {
			fail("no %s %s/%s", c.kind, observabilityNS, c.name)
			continue
		}
		pod, _ := netpol.TemplatePod(w)
		for _, p := range es.pods {
			if !np.Allowed(pod, p, es.targetPort) {
				fail("%s %s: NetworkPolicies block it from the logging Elasticsearch port %d", c.kind, c.name, es.targetPort)
			}
		}
	}
	// Retention: the setup Job's ConfigMap says the environment's number of days.
	days := ""
	for _, o := range t.of("ConfigMap", observabilityNS) {
		if strings.HasPrefix(o.GetName(), loggingRetentionCM+"-") || o.GetName() == loggingRetentionCM {
			days, _, _ = unstructured.NestedString(o.Object, "data", "days")
		}
	}
	if want := strconv.Itoa(loggingRetentionDays[env]); days != want {
		fail("logs are kept %q days in %s, want %s (ConfigMap %s)", days, env, want, loggingRetentionCM)
	}
	// Envoy's access logs must be JSON for Merge_Log to parse them.
	mesh, _, _ := unstructured.NestedString(cmOrEmpty(t.one("ConfigMap", meshRootNamespace, "istio")).Object, "data", "mesh")
	var meshConfig struct {
		AccessLogEncoding string `json:"accessLogEncoding"`
	}
	if err := yaml.Unmarshal([]byte(mesh), &meshConfig); err != nil || meshConfig.AccessLogEncoding != "JSON" {
		fail("istiod writes access logs as %q, not JSON: Fluent Bit would not parse them into fields", meshConfig.AccessLogEncoding)
	}
	return problems
}

// TestLoggingPath: in staging and prod Fluent Bit tails the containers' logs, parses JSON lines
// (the services' and Envoy's access logs), and ships them to the dedicated logging Elasticsearch,
// which its NetworkPolicy (and the store's) admit; Kibana and the setup Job reach that cluster;
// the retention is the environment's. Dev (logging opt-in) runs none of it.
func TestLoggingPath(t *testing.T) {
	for _, c := range repo(t).Clusters {
		problems, deployed := loggingPathProblems(c.Name, clusterObjects(c))
		assert.Empty(t, problems, "%s: the log path is broken:\n%s", c.Name, strings.Join(problems, "\n"))
		assert.Equal(t, c.Name != "dev", deployed, "%s: Fluent Bit runs in staging and prod, and in dev only when opted in", c.Name)
	}
}

// TestLoggingPathCatchesFaults: each fault, put into prod's rendered objects, is reported.
func TestLoggingPathCatchesFaults(t *testing.T) {
	var prod *render.Cluster
	for _, c := range repo(t).Clusters {
		if c.Name == "prod" {
			prod = c
		}
	}
	require.NotNil(t, prod)
	editConf := func(old, new string) func(objs []*unstructured.Unstructured) {
		return func(objs []*unstructured.Unstructured) {
			cm := find(objs, "ConfigMap", loggingNamespace, fluentBitConfigName)
			conf, _, _ := unstructured.NestedString(cm.Object, "data", fluentBitConfigKey)
			require.Contains(t, conf, old)
			require.NoError(t, unstructured.SetNestedField(cm.Object, strings.ReplaceAll(conf, old, new), "data", fluentBitConfigKey))
		}
	}
	faults := []struct {
		name   string
		break_ func(objs []*unstructured.Unstructured)
		want   string
	}{
		{"shipping to the product search cluster", editConf("Host elasticsearch.observability.svc.cluster.local", "Host elasticsearch.cloudlab-data.svc.cluster.local"),
			"fluent-bit ships to elasticsearch.cloudlab-data.svc.cluster.local, not the dedicated logging Elasticsearch"},
		{"shipping to a Service that does not exist", editConf("Host elasticsearch.observability", "Host logs.observability"),
			"fluent-bit ships to logs.observability.svc.cluster.local:9200: logs.observability.svc.cluster.local names no Service"},
		{"JSON lines left unparsed", editConf("Merge_Log On", "Merge_Log Off"), "does not parse JSON lines into fields"},
		{"the store not admitting Fluent Bit", func(objs []*unstructured.Unstructured) {
			np := find(objs, "NetworkPolicy", observabilityNS, "elasticsearch")
			ingress, _, _ := unstructured.NestedSlice(np.Object, "spec", "ingress")
			from, _, _ := unstructured.NestedSlice(ingress[0].(map[string]any), "from")
			var kept []any
			for _, p := range from {
				if !strings.Contains(fmt.Sprint(p), "fluent-bit") {
					kept = append(kept, p)
				}
			}
			require.NoError(t, unstructured.SetNestedSlice(ingress[0].(map[string]any), kept, "from"))
			require.NoError(t, unstructured.SetNestedSlice(np.Object, ingress, "spec", "ingress"))
		}, "fluent-bit: NetworkPolicies block it from elasticsearch.observability.svc.cluster.local port 9200"},
		{"Kibana without egress", func(objs []*unstructured.Unstructured) {
			np := find(objs, "NetworkPolicy", observabilityNS, "kibana")
			require.NoError(t, unstructured.SetNestedSlice(np.Object, []any{}, "spec", "egress"))
		}, "Deployment kibana: NetworkPolicies block it from the logging Elasticsearch port 9200"},
		{"another retention", func(objs []*unstructured.Unstructured) {
			for _, o := range objs {
				if o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), loggingRetentionCM+"-") {
					require.NoError(t, unstructured.SetNestedField(o.Object, "7", "data", "days"))
				}
			}
		}, `logs are kept "7" days in prod, want 30`},
		{"Envoy access logs as text", func(objs []*unstructured.Unstructured) {
			cm := find(objs, "ConfigMap", meshRootNamespace, "istio")
			mesh, _, _ := unstructured.NestedString(cm.Object, "data", "mesh")
			require.NoError(t, unstructured.SetNestedField(cm.Object, strings.ReplaceAll(mesh, "accessLogEncoding: JSON", "accessLogEncoding: TEXT"), "data", "mesh"))
		}, `istiod writes access logs as "TEXT"`},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			objs := clusterObjects(prod)
			for i, o := range objs {
				objs[i] = o.DeepCopy()
			}
			f.break_(objs)
			problems, _ := loggingPathProblems("prod", objs)
			assert.Contains(t, strings.Join(problems, "\n"), f.want)
		})
	}
}
