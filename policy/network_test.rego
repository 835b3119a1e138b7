package cloudlab.network_test

import data.cloudlab.network
import data.fixtures

ns := fixtures.namespace("cloudlab", "restricted")

msg := "runs workloads but has no default-deny NetworkPolicy (podSelector {}, policyTypes Ingress+Egress, no rules): include platform/workload-namespace"

test_namespace_with_default_deny_passes if {
	count(network.deny) == 0 with input as fixtures.cluster([ns, fixtures.default_deny, fixtures.deployment])
}

test_workload_namespace_without_default_deny_is_denied if {
	network.deny == {{"app": "test", "kind": "Namespace", "namespace": "", "name": "cloudlab", "msg": msg}} with input as fixtures.cluster([ns])
}

test_policy_that_allows_something_is_not_a_default_deny if {
	allows := json.patch(fixtures.default_deny, [{"op": "add", "path": "/spec/ingress", "value": [{}]}])
	count(network.deny) == 1 with input as fixtures.cluster([ns, allows])
}

test_ingress_only_is_not_a_default_deny if {
	ingress_only := json.patch(fixtures.default_deny, [{"op": "replace", "path": "/spec/policyTypes", "value": ["Ingress"]}])
	count(network.deny) == 1 with input as fixtures.cluster([ns, ingress_only])
}

test_unlabelled_namespace_with_a_deployment_is_a_workload_namespace if {
	plain := json.remove(ns, ["metadata/labels/cloudlab.io~1workload-namespace"])
	network.deny == {{"app": "test", "kind": "Namespace", "namespace": "", "name": "cloudlab", "msg": msg}} with input as fixtures.cluster([plain, fixtures.deployment])
}
