# Quorum StatefulSets (label cloudlab.io/quorum=true: Kafka controllers, Elasticsearch
# master-eligible nodes, ClickHouse Keeper) elect by majority:
# - their size is 1 (dev) or odd and at least 3: an even size tolerates no more failures than
#   one member less, and 2 tolerates none;
# - their PDB never lets a drain take the majority: at most (n-1)/2 members disrupted at once.
package cloudlab.quorum

import data.lib

quorum_sets contains item if {
	some item in input.objects
	item.obj.kind == "StatefulSet"
	lib.labels(item.obj)["cloudlab.io/quorum"] == "true"
}

size(sts) := object.get(sts.spec, "replicas", 1)

deny contains lib.finding(item, msg) if {
	some item in quorum_sets
	n := size(item.obj)
	n != 1
	not odd_at_least_three(n)
	msg := sprintf("is a quorum of %d: use 1 (dev) or an odd size of at least 3", [n])
}

odd_at_least_three(n) if {
	n >= 3
	n % 2 == 1
}

deny contains lib.finding(item, msg) if {
	some item in quorum_sets
	n := size(item.obj)
	n > 1
	some pdb in input.objects
	pdb.obj.kind == "PodDisruptionBudget"
	pdb.obj.metadata.namespace == item.obj.metadata.namespace
	lib.selects(pdb.obj.spec.selector, lib.pod_labels(item.obj))
	allowed := disruptions_allowed(pdb.obj.spec, n)
	allowed > (n - 1) / 2
	msg := sprintf("PodDisruptionBudget %s lets %v of %d quorum members go at once: a majority needs at most %d", [pdb.obj.metadata.name, allowed, n, floor((n - 1) / 2)])
}

deny contains lib.finding(item, msg) if {
	some item in quorum_sets
	n := size(item.obj)
	n > 1
	count([p | some p in input.objects; p.obj.kind == "PodDisruptionBudget"; lib.selects(p.obj.spec.selector, lib.pod_labels(item.obj))]) == 0
	msg := sprintf("is a quorum of %d without a PodDisruptionBudget: a drain could take the majority", [n])
}

disruptions_allowed(spec, _) := spec.maxUnavailable if is_number(spec.maxUnavailable)

disruptions_allowed(spec, n) := n - spec.minAvailable if is_number(spec.minAvailable)

disruptions_allowed(spec, n) := ceil((n * to_number(trim_suffix(spec.maxUnavailable, "%"))) / 100) if is_string(spec.maxUnavailable)
