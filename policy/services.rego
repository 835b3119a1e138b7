# Every Service routes to exactly one workload: its selector matches the pods of one Deployment
# or StatefulSet in its namespace (none: traffic goes nowhere; two: traffic is split between
# unrelated pods), and every port targets a container port of those pods by a name that exists.
package cloudlab.services

import data.lib

workload_kinds := {"Deployment", "StatefulSet"}

matches(svc) := [w |
	some w in input.objects
	w.obj.kind in workload_kinds
	object.get(w.obj.metadata, "namespace", "") == object.get(svc.metadata, "namespace", "")
	selector_matches(svc.spec.selector, lib.pod_labels(w.obj))
]

selector_matches(selector, labels) if {
	count(selector) > 0
	every k, v in selector {
		labels[k] == v
	}
}

# Services without a selector (ExternalName, hand-managed EndpointSlices) are not judged.
selected_services contains item if {
	some item in input.objects
	item.obj.kind == "Service"
	item.obj.spec.selector
}

deny contains lib.finding(item, msg) if {
	some item in selected_services
	n := count(matches(item.obj))
	n != 1
	msg := sprintf("selector matches the pods of %d Deployments/StatefulSets: it must match exactly one", [n])
}

deny contains lib.finding(item, msg) if {
	some item in selected_services
	[w] := matches(item.obj)
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
