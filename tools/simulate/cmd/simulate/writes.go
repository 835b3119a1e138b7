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
	total, gone := map[string]int{}, map[string]int{} // by StatefulSet/Deployment name
	podLost := map[string]bool{}
	for _, p := range before.Pods {
		if p.Namespace != dataNamespace {
			continue
		}
		owner := ownerName(p)
		total[owner]++
		if lost[p.Spec.NodeName] {
			gone[owner]++
			podLost[p.Name] = true
		}
	}
	config := configMaps(ctx, cp)
	var out []string
	add := func(store, format string, args ...any) {
		out = append(out, fmt.Sprintf("%-18s %s", store+":", fmt.Sprintf(format, args...)))
	}
	majority := func(name string) bool { return total[name]-gone[name] > total[name]/2 }

	if svc, err := cp.Client.CoreV1().Services(dataNamespace).Get(ctx, "postgresql", metav1.GetOptions{}); err == nil {
		primary := svc.Spec.Selector["statefulset.kubernetes.io/pod-name"]
		if podLost[primary] {
			add("postgresql", "DOWN: the primary %s was in the lost zone; writes stop until a person fails over (docs/data/postgresql.md, Failover: the mechanical steps take about a second, measured by make verify; noticing the loss and merging the one-line change of primary in clusters/<env>/data/postgresql/values.yaml take longer)", primary)
		} else {
			add("postgresql", "takes writes: the primary %s lives", primary)
		}
	}
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
	if brokers != "" {
		rf, minISR := atoi(config["kafka"]["replication-factor"]), atoi(config["kafka"]["min-insync-replicas"])
		switch {
		case controllers != "" && !majority(controllers):
			add("kafka", "DOWN: %d of %d controllers lost, no metadata quorum", gone[controllers], total[controllers])
		case rf-gone[brokers] < minISR:
			add("kafka", "DOWN: %d of %d brokers lost; a partition keeps %d of %d replicas, min.insync.replicas is %d", gone[brokers], total[brokers], rf-gone[brokers], rf, minISR)
		default:
			add("kafka", "takes writes: %d of %d brokers lost; every partition keeps at least %d of %d replicas (min.insync.replicas %d), the controllers keep a majority", gone[brokers], total[brokers], rf-gone[brokers], rf, minISR)
		}
	}
	if n := total["redis"]; n > 1 {
		perMaster := atoi(config["redis"]["replicas-per-master"])
		switch {
		case gone["redis"] == 0:
			add("redis", "takes writes: no node lost")
		case perMaster == 0:
			add("redis", "PARTLY DOWN: %d of %d masters lost and none has a replica; their slots take no writes until they return (the others do)", gone["redis"], n)
		default:
			add("redis", "takes writes after a lost master's replica takes over (cluster-node-timeout), unless a master and its replica were both in the lost zone: %d of %d nodes lost (replica placement by zone is not checked)", gone["redis"], n)
		}
	}
	for _, st := range before.StatefulSets {
		if st.Namespace != dataNamespace || st.Labels["cloudlab.io/quorum"] != "true" || st.Labels["app.kubernetes.io/name"] == "kafka" {
			continue
		}
		store := st.Labels["app.kubernetes.io/name"]
		if majority(st.Name) {
			add(store, "takes writes: %d of %d of %s (the quorum) live", total[st.Name]-gone[st.Name], total[st.Name], st.Name)
		} else {
			add(store, "DOWN: %d of %d of %s lost, no quorum", gone[st.Name], total[st.Name], st.Name)
		}
	}
	var shards []string
	for name := range total {
		if strings.HasPrefix(name, "clickhouse-shard-") {
			shards = append(shards, name)
		}
	}
	sort.Strings(shards)
	for _, sh := range shards {
		if total[sh] == gone[sh] {
			add("clickhouse", "DOWN: every replica of %s lost", sh)
		}
	}
	if n := total["schema-registry"]; n > 0 {
		if gone["schema-registry"] < n {
			add("schema-registry", "takes writes: %d of %d replicas live (a leader is re-elected through Kafka)", n-gone["schema-registry"], n)
		} else {
			add("schema-registry", "DOWN until its replicas are rescheduled: all %d were in the lost zone", n)
		}
	}
	return out
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
