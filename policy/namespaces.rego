# Namespaces are created in one place (platform/namespaces) with their Pod Security level:
# every namespaced object names a namespace that the cluster's platform creates; no
# cluster-scoped object claims one; every Namespace declares its enforced Pod Security level,
# which is `restricted` unless policy/exceptions.yaml says why not.
package cloudlab.namespaces

import data.lib

created := {item.obj.metadata.name | some item in input.objects; item.obj.kind == "Namespace"}

psa_enforce := "pod-security.kubernetes.io/enforce"

deny contains lib.finding(item, "has no metadata.namespace: set it explicitly (Argo CD would otherwise use the Application's destination)") if {
	some item in input.objects
	lib.is_namespaced(item.obj)
	not item.obj.metadata.namespace
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	lib.is_namespaced(item.obj)
	ns := item.obj.metadata.namespace
	not ns in created
	msg := sprintf("namespace %q is not created by platform/namespaces: add it there (with its Pod Security labels) or use an existing one", [ns])
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	not lib.is_namespaced(item.obj)
	item.obj.metadata.namespace
	msg := sprintf("is cluster-scoped but sets namespace %q: remove it", [item.obj.metadata.namespace])
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind == "Namespace"
	not lib.labels(item.obj)[psa_enforce]
	msg := sprintf("has no %s label: set restricted", [psa_enforce])
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind == "Namespace"
	level := lib.labels(item.obj)[psa_enforce]
	level != "restricted"
	msg := sprintf("enforces Pod Security %q: use restricted, or add a reviewed entry with the reason to policy/exceptions.yaml", [level])
}
