# Every namespace that runs our workloads starts from deny-all: a NetworkPolicy that selects
# every pod and lists Ingress and Egress with no rules. Workload namespaces are those labelled
# cloudlab.io/workload-namespace=true and any namespace a Deployment/StatefulSet/DaemonSet of
# ours lands in.
package cloudlab.network

import data.lib

workload_namespaces contains ns if {
	some item in input.objects
	item.obj.kind == "Namespace"
	lib.labels(item.obj)["cloudlab.io/workload-namespace"] == "true"
	ns := item.obj.metadata.name
}

workload_namespaces contains ns if {
	some item in input.objects
	item.obj.kind in lib.long_running_kinds
	ns := item.obj.metadata.namespace
}

is_default_deny(np) if {
	np.spec.podSelector == {}
	{"Ingress", "Egress"} == {t | some t in np.spec.policyTypes}
	count(object.get(np.spec, "ingress", [])) == 0
	count(object.get(np.spec, "egress", [])) == 0
}

denied_namespaces contains ns if {
	some item in input.objects
	item.obj.kind == "NetworkPolicy"
	is_default_deny(item.obj)
	ns := item.obj.metadata.namespace
}

deny contains finding if {
	some ns in workload_namespaces
	not ns in denied_namespaces
	finding := {
		"app": owner(ns),
		"kind": "Namespace",
		"namespace": "",
		"name": ns,
		"msg": "runs workloads but has no default-deny NetworkPolicy (podSelector {}, policyTypes Ingress+Egress, no rules): include platform/workload-namespace",
	}
}

# owner(ns) is the Application that creates the namespace (else the one deploying into it).
owner(ns) := app if {
	some item in input.objects
	item.obj.kind == "Namespace"
	item.obj.metadata.name == ns
	app := item.app
} else := app if {
	some item in input.objects
	object.get(item.obj.metadata, "namespace", "") == ns
	app := item.app
}
