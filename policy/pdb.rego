# PodDisruptionBudgets that match the topology: a workload that is guaranteed more than one
# replica has exactly one PDB; no PDB forbids every disruption (drains would hang forever); no
# PDB sits on a single replica (same effect); every PDB selects exactly one workload; crash-looping pods
# never block a drain (unhealthyPodEvictionPolicy: AlwaysAllow).
package cloudlab.pdb

import data.lib

replicated_kinds := {"Deployment", "StatefulSet"}

# guaranteed[key] is the replica count a workload never goes below: the HPA's minReplicas when
# an HPA scales it, else spec.replicas (default 1).
guaranteed[key] := n if {
	some item in input.objects
	item.obj.kind in replicated_kinds
	key := wkey(item.obj)
	n := min_replicas(item.obj)
}

min_replicas(w) := object.get(hpa.spec, "minReplicas", 1) if {
	some h in input.objects
	h.obj.kind == "HorizontalPodAutoscaler"
	hpa := h.obj
	hpa.spec.scaleTargetRef.kind == w.kind
	hpa.spec.scaleTargetRef.name == w.metadata.name
	object.get(hpa.metadata, "namespace", "") == object.get(w.metadata, "namespace", "")
} else := object.get(w.spec, "replicas", 1)

wkey(obj) := sprintf("%s/%s/%s", [obj.kind, object.get(obj.metadata, "namespace", ""), obj.metadata.name])

pdbs := [item | some item in input.objects; item.obj.kind == "PodDisruptionBudget"]

# selected[i] is the set of workload keys that pdbs[i] selects.
selected[i] := ws if {
	some i, p in pdbs
	ws := {wkey(w.obj) |
		some w in input.objects
		w.obj.kind in replicated_kinds
		object.get(w.obj.metadata, "namespace", "") == object.get(p.obj.metadata, "namespace", "")
		lib.selects(p.obj.spec.selector, lib.pod_labels(w.obj))
	}
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind in replicated_kinds
	n := guaranteed[wkey(item.obj)]
	n > 1
	count([i | some i, s in selected; wkey(item.obj) in s]) == 0
	msg := sprintf("runs at least %d replicas but no PodDisruptionBudget selects it: add one (maxUnavailable: 1)", [n])
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind in replicated_kinds
	names := [pdbs[i].obj.metadata.name | some i, s in selected; wkey(item.obj) in s]
	count(names) > 1
	msg := sprintf("is selected by %d PodDisruptionBudgets (%s): keep exactly one", [count(names), concat(", ", sort(names))])
}

deny contains lib.finding(pdbs[i], "selects no Deployment or StatefulSet: fix spec.selector or remove it") if {
	some i, s in selected
	count(s) == 0
}

deny contains lib.finding(pdbs[i], msg) if {
	some i, s in selected
	count(s) > 1
	msg := sprintf("selects %d workloads (%s): a PDB protects exactly one", [count(s), concat(", ", sort(s))])
}

deny contains lib.finding(pdbs[i], msg) if {
	some i, s in selected
	some key in s
	guaranteed[key] <= 1
	msg := sprintf("selects %s, which can run a single replica: a PDB there blocks every node drain; remove it", [key])
}

deny contains lib.finding(item, "maxUnavailable 0 forbids every voluntary disruption, so node drains hang: allow at least 1") if {
	some item in pdbs
	item.obj.spec.maxUnavailable in {0, "0%"}
}

deny contains lib.finding(pdbs[i], msg) if {
	some i, s in selected
	least := pdbs[i].obj.spec.minAvailable
	some key in s
	blocks_all(least, guaranteed[key])
	msg := sprintf("minAvailable %v leaves no replica of %s to disrupt, so node drains hang: use maxUnavailable: 1", [least, key])
}

deny contains lib.finding(item, "unhealthyPodEvictionPolicy is not AlwaysAllow: a crash-looping pod would block node drains") if {
	some item in pdbs
	object.get(item.obj.spec, "unhealthyPodEvictionPolicy", "") != "AlwaysAllow"
}

blocks_all(least, _) if least == "100%"

blocks_all(least, n) if {
	is_number(least)
	least >= n
	n > 1
}
