# Autoscalers that cannot fight: an HPA targets a workload that exists; a VPA that acts
# (updateMode other than Off) never controls a resource an HPA of the same workload scales on.
# Recommendation-only VPAs (updateMode Off) are always fine.
package cloudlab.autoscaling

import data.lib

workload_exists(kind, name, ns) if {
	some w in input.objects
	w.obj.kind == kind
	w.obj.metadata.name == name
	object.get(w.obj.metadata, "namespace", "") == ns
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind == "HorizontalPodAutoscaler"
	ref := item.obj.spec.scaleTargetRef
	not workload_exists(ref.kind, ref.name, object.get(item.obj.metadata, "namespace", ""))
	msg := sprintf("scaleTargetRef %s/%s does not exist in this namespace", [ref.kind, ref.name])
}

hpa_resources(ref, ns) := {m.resource.name |
	some h in input.objects
	h.obj.kind == "HorizontalPodAutoscaler"
	object.get(h.obj.metadata, "namespace", "") == ns
	h.obj.spec.scaleTargetRef.kind == ref.kind
	h.obj.spec.scaleTargetRef.name == ref.name
	some m in object.get(h.obj.spec, "metrics", [{"type": "Resource", "resource": {"name": "cpu"}}])
	m.type == "Resource"
}

vpa_resources(vpa) := {r |
	some p in object.get(vpa.spec, ["resourcePolicy", "containerPolicies"], [{}])
	some r in object.get(p, "controlledResources", ["cpu", "memory"])
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind == "VerticalPodAutoscaler"
	mode := object.get(item.obj.spec, ["updatePolicy", "updateMode"], "Auto")
	mode != "Off"
	both := vpa_resources(item.obj) & hpa_resources(item.obj.spec.targetRef, object.get(item.obj.metadata, "namespace", ""))
	count(both) > 0
	msg := sprintf("updateMode %s controls %s, which an HPA of the same workload scales on: use updateMode Off (recommendations) or drop those resources", [mode, concat(", ", sort(both))])
}
