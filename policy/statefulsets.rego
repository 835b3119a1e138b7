# Every StatefulSet's serviceName is a headless Service (clusterIP: None) in its namespace that
# selects its pods: the pods' stable DNS names (peer discovery, replication) depend on it, and the
# API server does not check it.
package cloudlab.statefulsets

import data.lib

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind == "StatefulSet"
	name := item.obj.spec.serviceName
	not headless_for(name, item.obj)
	msg := sprintf("serviceName %q is not a headless Service (clusterIP: None) of this namespace selecting its pods", [name])
}

headless_for(name, sts) if {
	some s in input.objects
	s.obj.kind == "Service"
	s.obj.metadata.name == name
	s.obj.metadata.namespace == sts.metadata.namespace
	s.obj.spec.clusterIP == "None"
	every k, v in s.obj.spec.selector {
		lib.pod_labels(sts)[k] == v
	}
}
