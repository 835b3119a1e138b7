# Least-privilege RBAC: no rule grants a wildcard verb, resource or API group, and nothing is
# bound to cluster-admin. Access is by named verbs on named resources (platform/rbac).
package cloudlab.rbac

import data.lib

rule_kinds := {"Role", "ClusterRole"}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind in rule_kinds
	some i, rule in object.get(item.obj, "rules", [])
	some field in ["verbs", "resources", "apiGroups"]
	"*" in object.get(rule, field, [])
	msg := sprintf("rules[%d].%s contains \"*\": name each one", [i, field])
}

deny contains lib.finding(item, "binds cluster-admin: bind a named role with only the verbs needed") if {
	some item in input.objects
	item.obj.kind in {"RoleBinding", "ClusterRoleBinding"}
	item.obj.roleRef.name == "cluster-admin"
}
