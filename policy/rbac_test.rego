package cloudlab.rbac_test

import data.cloudlab.rbac
import data.fixtures

role(rules) := {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r", "labels": {}}, "rules": rules}

test_named_rules_pass if {
	count(rbac.deny) == 0 with input as fixtures.cluster([role([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}])])
}

test_wildcard_verb_is_denied if {
	bad := role([{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}])
	rbac.deny == {fixtures.finding(bad, `rules[0].verbs contains "*": name each one`)} with input as fixtures.cluster([bad])
}

test_wildcard_resource_and_group_are_denied if {
	bad := role([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]}])
	count(rbac.deny) == 2 with input as fixtures.cluster([bad])
}

test_cluster_admin_binding_is_denied if {
	bad := {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "b"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}, "subjects": []}
	rbac.deny == {fixtures.finding(bad, "binds cluster-admin: bind a named role with only the verbs needed")} with input as fixtures.cluster([bad])
}
