package policytest

import (
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/check"
	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const dataNamespace = "cloudlab-data"

func statefulSets(c *render.Cluster) map[string]*unstructured.Unstructured {
	out := map[string]*unstructured.Unstructured{}
	for _, o := range objectsOf(c, "StatefulSet", dataNamespace) {
		out[o.GetName()] = o
	}
	return out
}

func replicas(o *unstructured.Unstructured) int64 {
	n, ok, _ := unstructured.NestedInt64(o.Object, "spec", "replicas")
	if !ok {
		return 1
	}
	return n
}

// TestDataTopology: each environment runs the data tier's topology of docs/data.
func TestDataTopology(t *testing.T) {
	want := map[string]map[string]int64{ // cluster -> StatefulSet -> replicas
		"dev": {"postgresql": 1, "redis": 1, "clickhouse-keeper": 1, "clickhouse-shard-0": 1,
			"elasticsearch-node": 1, "kafka-node": 1},
		"staging": {"postgresql": 2, "redis": 3, "clickhouse-keeper": 3, "clickhouse-shard-0": 2,
			"elasticsearch-node": 3, "kafka-node": 3},
		"prod": {"postgresql": 3, "redis": 6, "clickhouse-keeper": 3, "clickhouse-shard-0": 2, "clickhouse-shard-1": 2,
			"elasticsearch-master": 3, "elasticsearch-data": 3, "elasticsearch-ingest": 2,
			"kafka-controller": 3, "kafka-broker": 3},
	}
	for _, c := range repo(t).Clusters {
		got := map[string]int64{}
		for name, o := range statefulSets(c) {
			got[name] = replicas(o)
		}
		assert.Equal(t, want[c.Name], got, "%s: data tier StatefulSets and replicas", c.Name)
	}
}

// TestQuorums: in staging and prod, Kafka controllers, Elasticsearch master-eligible nodes and
// ClickHouse Keeper are quorum sets of an odd size of at least 3; in prod their members are
// required to run on distinct nodes and in distinct zones. (policy/quorum.rego checks their PDBs everywhere.)
func TestQuorums(t *testing.T) {
	for _, c := range repo(t).Clusters {
		if c.Name == "dev" {
			continue
		}
		stores := map[string]bool{}
		for name, o := range statefulSets(c) {
			if o.GetLabels()["cloudlab.io/quorum"] != "true" {
				continue
			}
			stores[o.GetLabels()["app.kubernetes.io/name"]] = true
			n := replicas(o)
			assert.True(t, n >= 3 && n%2 == 1, "%s: quorum %s has %d members", c.Name, name, n)
			required, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
			if c.Name == "prod" {
				assert.Len(t, required, 1, "prod: quorum %s needs required hostname anti-affinity", name)
				spread, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "topologySpreadConstraints")
				if assert.NotEmpty(t, spread, "prod: quorum %s needs zone spread", name) {
					assert.Equal(t, "DoNotSchedule", spread[0].(map[string]any)["whenUnsatisfiable"], "prod: quorum %s must spread over zones (required)", name)
				}
			}
		}
		assert.Equal(t, map[string]bool{"kafka": true, "elasticsearch": true, "clickhouse-keeper": true}, stores, "%s: quorum sets", c.Name)
	}
}

// TestBackups: in staging and prod, every data Application that keeps data on volumes has a
// backup CronJob (label cloudlab.io/backup-of), unless policy/exceptions.yaml says why not.
func TestBackups(t *testing.T) {
	data, err := os.ReadFile("../policy/exceptions.yaml")
	require.NoError(t, err)
	var ex struct {
		Exceptions []struct{ Policy, Application, Reason string } `json:"exceptions"`
	}
	require.NoError(t, yaml.Unmarshal(data, &ex))
	excepted := map[string]bool{}
	for _, e := range ex.Exceptions {
		if e.Policy == "backups" {
			require.NotEmpty(t, e.Reason, "backup exception for %s needs a reason", e.Application)
			excepted[e.Application] = true
		}
	}
	for _, c := range repo(t).Clusters {
		if c.Name == "dev" {
			continue
		}
		for _, a := range c.Apps {
			if a.Application.Labels["cloudlab.io/wave"] != "data" {
				continue // the upstream charts' StatefulSets (Argo CD's controller) keep no data
			}
			stateful, backedUp := false, false
			for _, o := range a.Objects {
				if o.GetKind() == "StatefulSet" {
					stateful = true
				}
				if o.GetKind() == "CronJob" && o.GetLabels()["cloudlab.io/backup-of"] != "" {
					backedUp = true
				}
			}
			if stateful {
				assert.True(t, backedUp != excepted[a.Name()], "%s/%s: a store with volumes needs a backup CronJob or (exclusively) a reviewed exception", c.Name, a.Name())
			}
		}
	}
}

// TestStoreClients: the services a store's NetworkPolicy admits from the application namespace
// (judged on the rendered Deployments' pod labels, whatever the selector's form) are exactly the
// services that declare the store in their catalog entry.
func TestStoreClients(t *testing.T) {
	cat := catalog(t)
	for _, c := range repo(t).Clusters {
		admitted := check.StoreClients(check.AllObjects(c), dataNamespace, appNamespace)
		stores := map[string]bool{}
		for _, s := range cat.Services {
			for _, store := range s.DataStores {
				stores[store] = true
			}
		}
		for store := range stores {
			want := cat.ClientsOf(store)
			sort.Strings(want)
			assert.Equal(t, want, admitted[store], "%s: clients admitted by NetworkPolicy %s = services that declare %s", c.Name, store, store)
		}
		for store, clients := range admitted {
			if len(clients) > 0 {
				assert.True(t, stores[store], "%s: NetworkPolicy %s admits application clients %v, but no service declares %s", c.Name, store, clients, store)
			}
		}
	}
}

// TestStoreClientLabels: every service's pods carry data.cloudlab.io/<store>: client for exactly
// the stores of its catalog entry, so that a store's NetworkPolicy can admit its clients by
// label instead of by a second list of names.
func TestStoreClientLabels(t *testing.T) {
	cat := catalog(t)
	for _, c := range repo(t).Clusters {
		for _, d := range objectsOf(c, "Deployment", appNamespace) {
			s, ok := cat.Service(d.GetName())
			require.True(t, ok, "%s: Deployment %s is not in the catalog", c.Name, d.GetName())
			labels, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "labels")
			got := map[string]string{}
			for k, v := range labels {
				if strings.HasPrefix(k, check.StoreClientLabelPrefix) {
					got[k] = v
				}
			}
			want := map[string]string{}
			for _, store := range s.DataStores {
				want[check.StoreClientLabelPrefix+store] = "client"
			}
			assert.Equal(t, want, got, "%s: store client labels of %s", c.Name, s.Name)
		}
	}
}
