package cloudlab.mesh_test

import data.cloudlab.mesh
import data.fixtures

meshed_ns := json.patch(fixtures.namespace("cloudlab", "restricted"), [{"op": "add", "path": "/metadata/labels/istio-injection", "value": "enabled"}])

strict := {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication", "metadata": {"name": "default", "namespace": "istio-system"}, "spec": {"mtls": {"mode": "STRICT"}}}

deny_all := {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": fixtures.meta("deny-all"), "spec": {}}

metrics_deployment(annotations) := json.patch(fixtures.deployment, [
	{"op": "add", "path": "/spec/template/spec/containers/0/ports", "value": [{"name": "http-metrics", "containerPort": 9090}]},
	{"op": "add", "path": "/spec/template/metadata/annotations", "value": annotations},
])

data_ns(injection) := json.patch(fixtures.namespace("cloudlab-data", "restricted"), [{"op": "add", "path": "/metadata/labels/istio-injection", "value": injection}])

test_meshed_namespace_with_strict_and_deny_all_passes if {
	good := metrics_deployment({"traffic.sidecar.istio.io/excludeInboundPorts": "9090"})
	count(mesh.deny) == 0 with input as fixtures.cluster([meshed_ns, strict, deny_all, good, data_ns("disabled")])
}

test_missing_deny_all_is_denied if {
	mesh.deny == {fixtures.finding(meshed_ns, "is meshed but has no deny-all AuthorizationPolicy (empty spec): every call would be allowed")} with input as fixtures.cluster([meshed_ns, strict])
}

test_missing_strict_is_denied if {
	permissive := json.patch(strict, [{"op": "replace", "path": "/spec/mtls/mode", "value": "PERMISSIVE"}])
	mesh.deny == {fixtures.finding(meshed_ns, "is meshed but no PeerAuthentication in istio-system sets mTLS STRICT for the whole mesh: add platform/mesh/peerauthentication-mesh-strict.yaml")} with input as fixtures.cluster([meshed_ns, permissive, deny_all])
}

test_metrics_port_through_sidecar_is_denied if {
	bad := metrics_deployment({})
	mesh.deny == {fixtures.finding(bad, "port http-metrics (9090) goes through the sidecar, where STRICT mTLS rejects Prometheus: add it to annotation traffic.sidecar.istio.io/excludeInboundPorts")} with input as fixtures.cluster([meshed_ns, strict, deny_all, bad])
}

test_data_tier_in_mesh_is_denied if {
	bad := data_ns("enabled")
	mesh.deny[fixtures.finding(bad, "is the data tier, which stays out of the mesh (docs/decisions/0006): label istio-injection=disabled")] with input as fixtures.cluster([bad, strict])
}

test_data_tier_pod_opting_in_is_denied if {
	store := json.patch(fixtures.deployment, [
		{"op": "replace", "path": "/metadata/namespace", "value": "cloudlab-data"},
		{"op": "add", "path": "/spec/template/metadata/annotations", "value": {"sidecar.istio.io/inject": "true"}},
	])
	mesh.deny == {fixtures.finding(store, "opts into the sidecar in the data tier, which stays out of the mesh (docs/decisions/0006)")} with input as fixtures.cluster([data_ns("disabled"), store])
}

test_istio_policy_in_data_tier_is_denied if {
	pa := json.patch(strict, [{"op": "replace", "path": "/metadata/namespace", "value": "cloudlab-data"}])
	mesh.deny == {fixtures.finding(pa, "is an Istio PeerAuthentication in the data tier, which has no sidecars: it would govern nothing (docs/decisions/0006)")} with input as fixtures.cluster([data_ns("disabled"), pa])
}
