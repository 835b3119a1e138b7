package cloudlab.apis_test

import data.cloudlab.apis
import data.fixtures

test_current_apis_pass if {
	objs := [
		fixtures.deployment,
		fixtures.pdb({"maxUnavailable": 1}),
		{"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": fixtures.meta("web"), "spec": {"host": "web"}},
		{"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter", "metadata": fixtures.meta("web"), "spec": {}},
	]
	count(apis.deny) == 0 with input as fixtures.cluster(objs)
}

test_removed_pdb_api_is_denied if {
	bad := json.patch(fixtures.pdb({"maxUnavailable": 1}), [{"op": "replace", "path": "/apiVersion", "value": "policy/v1beta1"}])
	apis.deny == {fixtures.finding(bad, "apiVersion policy/v1beta1 is deprecated or removed: use policy/v1")} with input as fixtures.cluster([bad])
}

test_old_istio_api_is_denied if {
	bad := {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService", "metadata": fixtures.meta("web"), "spec": {}}
	apis.deny == {fixtures.finding(bad, "apiVersion networking.istio.io/v1beta1 is deprecated or removed: use networking.istio.io/v1")} with input as fixtures.cluster([bad])
}

test_endpoints_is_denied if {
	bad := {"apiVersion": "v1", "kind": "Endpoints", "metadata": fixtures.meta("web")}
	apis.deny == {fixtures.finding(bad, "apiVersion v1 is deprecated or removed: use discovery.k8s.io/v1 EndpointSlice (Endpoints is deprecated since 1.33)")} with input as fixtures.cluster([bad])
}
