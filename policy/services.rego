# Every Service routes to exactly one workload: its selector matches the pods of one Deployment,
# StatefulSet or DaemonSet in its namespace (none: traffic goes nowhere; two: traffic is split between
# unrelated pods; the one exception is a store spread over several StatefulSets), and every port
# targets a container port of those pods by a name that exists.
package cloudlab.services

import data.lib

workload_kinds := {"Deployment", "StatefulSet", "DaemonSet"}

matches(svc) := [w |
	some w in input.objects
	w.obj.kind in workload_kinds
	object.get(w.obj.metadata, "namespace", "") == object.get(svc.metadata, "namespace", "")
	selector_matches(svc.spec.selector, lib.pod_labels(w.obj), w.obj)
]

# The pod-name label is set by the StatefulSet controller, not the template: a Service that
# selects one pod of a StatefulSet (PostgreSQL's primary) names it <statefulset>-<ordinal>.
pod_name_key := "statefulset.kubernetes.io/pod-name"

selector_matches(selector, labels, w) if {
	count(selector) > 0
	every k, v in selector {
		label_matches(k, v, labels, w)
	}
}

label_matches(k, v, labels, _) if labels[k] == v

label_matches(k, v, _, w) if {
	k == pod_name_key
	w.kind == "StatefulSet"
	regex.match(sprintf("^%s-[0-9]+$", [w.metadata.name]), v)
}

# Services without a selector (ExternalName, hand-managed EndpointSlices) are not judged.
selected_services contains item if {
	some item in input.objects
	item.obj.kind == "Service"
	item.obj.spec.selector
}

deny contains lib.finding(item, "selector matches the pods of no Deployment, StatefulSet or DaemonSet: traffic would go nowhere") if {
	some item in selected_services
	count(matches(item.obj)) == 0
}

# More than one workload is only right for one store spread over node sets (StatefulSets of the
# same app.kubernetes.io/name, e.g. two ClickHouse shards behind one client Service).
deny contains lib.finding(item, msg) if {
	some item in selected_services
	ws := matches(item.obj)
	count(ws) > 1
	not one_store(ws)
	msg := sprintf("selector matches the pods of %d workloads (%s): it must match exactly one", [count(ws), concat(", ", sort([sprintf("%s/%s", [w.obj.kind, w.obj.metadata.name]) | some w in ws]))])
}

one_store(ws) if {
	every w in ws {
		w.obj.kind == "StatefulSet"
	}
	count({lib.labels(w.obj)["app.kubernetes.io/name"] | some w in ws}) == 1
}

deny contains lib.finding(item, msg) if {
	some item in selected_services
	some w in matches(item.obj)
	some port in item.obj.spec.ports
	is_string(port.targetPort)
	not port.targetPort in container_port_names(w.obj)
	msg := sprintf("port %q targets %q, which no container of %s/%s names", [port.name, port.targetPort, w.obj.kind, w.obj.metadata.name])
}

container_port_names(w) := {p.name |
	some c in lib.pod_spec(w).containers
	some p in object.get(c, "ports", [])
	p.name
}
