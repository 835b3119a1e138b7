# The mesh holds what docs/mesh.md promises:
# - a mesh-wide STRICT PeerAuthentication (root namespace istio-system, no selector) exists
#   wherever anything is meshed;
# - every meshed namespace (istio-injection=enabled) has a deny-all AuthorizationPolicy, so only
#   the services' own ALLOW policies open calls;
# - meshed pods exclude their metrics port from the sidecar, so Prometheus can scrape it
#   (docs/decisions/0005);
# - the data tier stays out of the mesh (docs/decisions/0006): its namespace disables injection,
#   no pod opts in, and no mesh policy pretends to govern it.
package cloudlab.mesh

import data.lib

root_namespace := "istio-system"

out_of_mesh := {"cloudlab-data"}

meshed contains ns.obj.metadata.name if {
	some ns in input.objects
	ns.obj.kind == "Namespace"
	lib.labels(ns.obj)["istio-injection"] == "enabled"
}

strict_mesh_wide if {
	some item in input.objects
	item.obj.kind == "PeerAuthentication"
	item.obj.metadata.namespace == root_namespace
	not item.obj.spec.selector
	item.obj.spec.mtls.mode == "STRICT"
}

deny contains lib.finding(item, msg) if {
	count(meshed) > 0
	not strict_mesh_wide
	some item in input.objects
	item.obj.kind == "Namespace"
	item.obj.metadata.name in meshed
	msg := sprintf("is meshed but no PeerAuthentication in %s sets mTLS STRICT for the whole mesh: add platform/mesh/peerauthentication-mesh-strict.yaml", [root_namespace])
}

is_deny_all(ap) if {
	object.get(ap, "spec", {}) == {}
}

deny contains lib.finding(item, "is meshed but has no deny-all AuthorizationPolicy (empty spec): every call would be allowed") if {
	some item in input.objects
	item.obj.kind == "Namespace"
	item.obj.metadata.name in meshed
	not deny_all_in(item.obj.metadata.name)
}

deny_all_in(ns) if {
	some ap in input.objects
	ap.obj.kind == "AuthorizationPolicy"
	ap.obj.metadata.namespace == ns
	is_deny_all(ap.obj)
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind in lib.long_running_kinds
	item.obj.metadata.namespace in meshed
	some c in lib.pod_spec(item.obj).containers
	some p in object.get(c, "ports", [])
	p.name == "http-metrics"
	excluded := split(object.get(item.obj.spec.template, ["metadata", "annotations", "traffic.sidecar.istio.io/excludeInboundPorts"], ""), ",")
	not sprintf("%v", [p.containerPort]) in {trim_space(x) | some x in excluded}
	msg := sprintf("port http-metrics (%v) goes through the sidecar, where STRICT mTLS rejects Prometheus: add it to annotation traffic.sidecar.istio.io/excludeInboundPorts", [p.containerPort])
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind == "Namespace"
	item.obj.metadata.name in out_of_mesh
	lib.labels(item.obj)["istio-injection"] != "disabled"
	msg := "is the data tier, which stays out of the mesh (docs/decisions/0006): label istio-injection=disabled"
}

deny contains lib.finding(item, "opts into the sidecar in the data tier, which stays out of the mesh (docs/decisions/0006)") if {
	some item in lib.workloads
	item.obj.metadata.namespace in out_of_mesh
	inject := object.union(lib.pod_labels(item.obj), object.get(lib.pod_spec_metadata(item.obj), "annotations", {}))
	inject["sidecar.istio.io/inject"] == "true"
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind in {"PeerAuthentication", "AuthorizationPolicy", "Sidecar", "RequestAuthentication"}
	item.obj.metadata.namespace in out_of_mesh
	msg := sprintf("is an Istio %s in the data tier, which has no sidecars: it would govern nothing (docs/decisions/0006)", [item.obj.kind])
}
