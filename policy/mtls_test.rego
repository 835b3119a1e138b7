package cloudlab.mtls_test

import data.cloudlab.mtls
import data.fixtures
import data.lib

pa(spec) := {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication", "metadata": fixtures.meta("default"), "spec": spec}

dr(policy) := {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": fixtures.meta("web"), "spec": {"host": "web", "trafficPolicy": policy}}

test_strict_passes if {
	count(mtls.deny) == 0 with input as fixtures.cluster([pa({"mtls": {"mode": "STRICT"}}), dr({"tls": {"mode": "ISTIO_MUTUAL"}})])
}

test_permissive_is_denied if {
	bad := pa({"mtls": {"mode": "PERMISSIVE"}})
	mtls.deny == {fixtures.finding(bad, "workload mTLS mode is PERMISSIVE: use STRICT (or add a reviewed entry to policy/exceptions.yaml)")} with input as fixtures.cluster([bad])
}

test_port_level_disable_is_denied if {
	bad := pa({"mtls": {"mode": "STRICT"}, "portLevelMtls": {"9090": {"mode": "DISABLE"}}})
	mtls.deny == {fixtures.finding(bad, "port 9090 mTLS mode is DISABLE: use STRICT (or add a reviewed entry to policy/exceptions.yaml)")} with input as fixtures.cluster([bad])
}

test_destination_rule_disable_is_denied if {
	bad := dr({"tls": {"mode": "DISABLE"}})
	mtls.deny == {fixtures.finding(bad, "trafficPolicy tls.mode is DISABLE, which sends plaintext inside the mesh: use ISTIO_MUTUAL or leave it unset")} with input as fixtures.cluster([bad])
}

test_exception_excuses_only_its_object if {
	bad := pa({"mtls": {"mode": "PERMISSIVE"}})
	exc := [{"policy": "mtls", "kind": "PeerAuthentication", "namespace": "cloudlab", "name": "default", "reason": "test"}]
	count(lib.reported("mtls", mtls.deny)) == 0 with input as fixtures.cluster([bad]) with data.exceptions as exc
	other := json.patch(bad, [{"op": "replace", "path": "/metadata/name", "value": "other"}])
	count(lib.reported("mtls", mtls.deny)) == 1 with input as fixtures.cluster([other]) with data.exceptions as exc
}
