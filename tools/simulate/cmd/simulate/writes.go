package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const dataNamespace = "cloudlab-data"

// StoreWrites says, per store of the data tier, whether it still takes writes after the pods in
// lost were lost (a zone outage), and why. The rules are each store's own (its manual), applied
// to where the pods ran (before) and the rendered configuration:
//   - PostgreSQL: the primary is the pod the read-write Service `postgresql` selects (the chart's
//     `primary` value); when it was
//     lost, writes stop until a person fails over (docs/data/postgresql.md);
//   - Kafka: a partition takes writes while a majority of the controllers lives and at least
//     min.insync.replicas of its replicas do (replicas are on distinct brokers: RF minus the lost
//     brokers is the worst case);
//   - Redis Cluster: a lost master's slots move to its replica after cluster-node-timeout; without
//     replicas they are unwritable until the node returns;
//   - Elasticsearch, ClickHouse Keeper: a majority of the master-eligible nodes / Keepers;
//     ClickHouse also needs a replica of every shard;
//   - Schema Registry: any replica (the leader is re-elected through Kafka).
//
// A line starting with "DOWN" is expected behaviour to know about, not a failed check.
func StoreWrites(ctx context.Context, cp *ControlPlane, before *Snapshot, lost map[string]bool) []string {
	w := &zoneLoss{total: map[string]int{}, gone: map[string]int{}, podLost: map[string]bool{}}
	for _, p := range before.Pods {
		if p.Namespace != dataNamespace {
			continue
		}
		owner := ownerName(p)
		w.total[owner]++
		if lost[p.Spec.NodeName] {
			w.gone[owner]++
			w.podLost[p.Name] = true
		}
	}
	config := configMaps(ctx, cp)
	if svc, err := cp.Client.CoreV1().Services(dataNamespace).Get(ctx, "postgresql", metav1.GetOptions{}); err == nil {
		w.postgresql(svc.Spec.Selector["statefulset.kubernetes.io/pod-name"])
	}
	w.kafka(before, config["kafka"])
	w.redis(config["redis"])
	w.quorums(before)
	w.clickhouseShards()
	w.schemaRegistry()
	return w.out
}

// zoneLoss counts, per workload of the data tier (StatefulSet or Deployment name), its pods
// before the loss (total) and those on lost nodes (gone), and collects StoreWrites' lines.
type zoneLoss struct {
	total, gone map[string]int
	podLost     map[string]bool // pod name -> it ran on a lost node
	out         []string
}

func (w *zoneLoss) add(store, format string, args ...any) {
	w.out = append(w.out, fmt.Sprintf("%-18s %s", store+":", fmt.Sprintf(format, args...)))
}

// majority: more than half of a workload's pods live.
func (w *zoneLoss) majority(name string) bool { return w.total[name]-w.gone[name] > w.total[name]/2 }

// postgresql: writes go on while the primary (the pod the read-write Service selects) lives.
func (w *zoneLoss) postgresql(primary string) {
	if w.podLost[primary] {
		w.add("postgresql", "DOWN: the primary %s was in the lost zone; writes stop until a person fails over (docs/data/postgresql.md, Failover: the mechanical steps take about a second, measured by make verify; noticing the loss and merging the one-line change of primary in clusters/<env>/data/postgresql/values.yaml take longer)", primary)
	} else {
		w.add("postgresql", "takes writes: the primary %s lives", primary)
	}
}

// kafka: a majority of the controllers and min.insync.replicas of a partition's replicas (the
// keys of the kafka-content ConfigMap).
func (w *zoneLoss) kafka(before *Snapshot, config map[string]string) {
	controllers, brokers := "", ""
	for _, st := range before.StatefulSets {
		if st.Namespace != dataNamespace || st.Labels["app.kubernetes.io/name"] != "kafka" {
			continue
		}
		if st.Labels["cloudlab.io/quorum"] == "true" {
			controllers = st.Name
		}
		if st.Spec.Template.Labels["kafka.cloudlab.io/broker"] == "true" {
			brokers = st.Name
		}
	}
	if brokers == "" {
		return
	}
	rf, minISR := atoi(config["replication-factor"]), atoi(config["min-insync-replicas"])
	switch {
	case controllers != "" && !w.majority(controllers):
		w.add("kafka", "DOWN: %d of %d controllers lost, no metadata quorum", w.gone[controllers], w.total[controllers])
	case rf-w.gone[brokers] < minISR:
		w.add("kafka", "DOWN: %d of %d brokers lost; a partition keeps %d of %d replicas, min.insync.replicas is %d", w.gone[brokers], w.total[brokers], rf-w.gone[brokers], rf, minISR)
	default:
		w.add("kafka", "takes writes: %d of %d brokers lost; every partition keeps at least %d of %d replicas (min.insync.replicas %d), the controllers keep a majority", w.gone[brokers], w.total[brokers], rf-w.gone[brokers], rf, minISR)
	}
}

// redis: a lost master's slots move to its replica (replicas-per-master of redis-content).
func (w *zoneLoss) redis(config map[string]string) {
	n := w.total["redis"]
	if n <= 1 {
		return
	}
	perMaster := atoi(config["replicas-per-master"])
	switch {
	case w.gone["redis"] == 0:
		w.add("redis", "takes writes: no node lost")
	case perMaster == 0:
		w.add("redis", "PARTLY DOWN: %d of %d masters lost and none has a replica; their slots take no writes until they return (the others do)", w.gone["redis"], n)
	default:
		w.add("redis", "takes writes after a lost master's replica takes over (cluster-node-timeout), unless a master and its replica were both in the lost zone: %d of %d nodes lost (replica placement by zone is not checked)", w.gone["redis"], n)
	}
}

// quorums: every other quorum StatefulSet (cloudlab.io/quorum=true: Elasticsearch's masters,
// ClickHouse's Keepers) needs a majority.
func (w *zoneLoss) quorums(before *Snapshot) {
	for _, st := range before.StatefulSets {
		if st.Namespace != dataNamespace || st.Labels["cloudlab.io/quorum"] != "true" || st.Labels["app.kubernetes.io/name"] == "kafka" {
			continue
		}
		store := st.Labels["app.kubernetes.io/name"]
		if w.majority(st.Name) {
			w.add(store, "takes writes: %d of %d of %s (the quorum) live", w.total[st.Name]-w.gone[st.Name], w.total[st.Name], st.Name)
		} else {
			w.add(store, "DOWN: %d of %d of %s lost, no quorum", w.gone[st.Name], w.total[st.Name], st.Name)
		}
	}
}

// clickhouseShards: a shard with every replica lost takes no writes.
func (w *zoneLoss) clickhouseShards() {
	var shards []string
	for name := range w.total {
		if strings.HasPrefix(name, "clickhouse-shard-") {
			shards = append(shards, name)
		}
	}
	sort.Strings(shards)
	for _, sh := range shards {
		if w.total[sh] == w.gone[sh] {
			w.add("clickhouse", "DOWN: every replica of %s lost", sh)
		}
	}
}

// schemaRegistry: any replica takes writes.
func (w *zoneLoss) schemaRegistry() {
	n := w.total["schema-registry"]
	if n == 0 {
		return
	}
	if w.gone["schema-registry"] < n {
		w.add("schema-registry", "takes writes: %d of %d replicas live (a leader is re-elected through Kafka)", n-w.gone["schema-registry"], n)
	} else {
		w.add("schema-registry", "DOWN until its replicas are rescheduled: all %d were in the lost zone", n)
	}
}

// ownerName is the workload a pod belongs to: its StatefulSet, or its Deployment (the
// ReplicaSet's name without its hash).
func ownerName(p corev1.Pod) string {
	for _, o := range p.OwnerReferences {
		switch o.Kind {
		case "StatefulSet":
			return o.Name
		case "ReplicaSet":
			if i := strings.LastIndex(o.Name, "-"); i > 0 {
				return o.Name[:i]
			}
		}
	}
	return p.Name
}

// configMaps reads the data tier's ConfigMaps by their name before kustomize's hash suffix.
func configMaps(ctx context.Context, cp *ControlPlane) map[string]map[string]string {
	out := map[string]map[string]string{}
	list, err := cp.Client.CoreV1().ConfigMaps(dataNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return out
	}
	for _, cm := range list.Items {
		name := cm.Name
		if i := strings.LastIndex(name, "-"); i > 0 && len(name)-i-1 == 10 {
			name = name[:i]
		}
		out[name] = cm.Data
	}
	return out
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// primaryZone is the zone of the node PostgreSQL's pod postgresql-0 (the primary unless a failover
// moved it) runs on, or fallback.
func primaryZone(s *Snapshot, fallback string) string {
	if s == nil {
		return fallback
	}
	zones := map[string]string{}
	for _, n := range s.Nodes {
		zones[n.Name] = n.Labels[zoneLabel]
	}
	for _, p := range s.Pods {
		if p.Namespace == dataNamespace && p.Name == "postgresql-0" && zones[p.Spec.NodeName] != "" {
			return zones[p.Spec.NodeName]
		}
	}
	return fallback
}
