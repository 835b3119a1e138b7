package cloudlab.namespaces_test

import data.cloudlab.namespaces
import data.fixtures
import data.lib

ns := fixtures.namespace("cloudlab", "restricted")

test_object_in_created_namespace_passes if {
	count(namespaces.deny) == 0 with input as fixtures.cluster([ns, fixtures.deployment])
}

test_unknown_namespace_is_denied if {
	bad := json.patch(fixtures.deployment, [{"op": "replace", "path": "/metadata/namespace", "value": "shop"}])
	namespaces.deny == {fixtures.finding(bad, `namespace "shop" is not created by platform/namespaces: add it there (with its Pod Security labels) or use an existing one`)} with input as fixtures.cluster([ns, bad])
}

test_missing_namespace_is_denied if {
	bad := json.remove(fixtures.deployment, ["metadata/namespace"])
	namespaces.deny == {fixtures.finding(bad, "has no metadata.namespace: set it explicitly (Argo CD would otherwise use the Application's destination)")} with input as fixtures.cluster([ns, bad])
}

test_cluster_scoped_with_namespace_is_denied if {
	bad := {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": fixtures.meta("reader"), "rules": []}
	namespaces.deny == {fixtures.finding(bad, `is cluster-scoped but sets namespace "cloudlab": remove it`)} with input as fixtures.cluster([ns, bad])
}

test_weaker_pod_security_needs_an_exception if {
	bad := fixtures.namespace("legacy", "privileged")
	namespaces.deny == {fixtures.finding(bad, `enforces Pod Security "privileged": use restricted, or add a reviewed entry with the reason to policy/exceptions.yaml`)} with input as fixtures.cluster([bad]) with data.exceptions as []
	count(lib.reported("namespaces", namespaces.deny)) == 0 with input as fixtures.cluster([bad]) with data.exceptions as [{"policy": "namespaces", "kind": "Namespace", "name": "legacy", "reason": "test"}]
}

test_missing_pod_security_label_is_denied if {
	bad := json.remove(ns, ["metadata/labels/pod-security.kubernetes.io~1enforce"])
	namespaces.deny == {fixtures.finding(bad, "has no pod-security.kubernetes.io/enforce label: set restricted")} with input as fixtures.cluster([bad])
}
