# Every ServiceMonitor scrapes something: its selector matches a Service in its namespace, and
# each endpoint names a port that Service has. A ServiceMonitor that matches nothing fails
# silently in Prometheus; here it fails the build.
package cloudlab.monitoring

import data.lib

selected_services(sm) := [s |
	some s in input.objects
	s.obj.kind == "Service"
	object.get(s.obj.metadata, "namespace", "") == object.get(sm.metadata, "namespace", "")
	lib.selects(sm.spec.selector, lib.labels(s.obj))
]

deny contains lib.finding(item, "selects no Service in its namespace: fix spec.selector") if {
	some item in input.objects
	item.obj.kind == "ServiceMonitor"
	count(selected_services(item.obj)) == 0
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind == "ServiceMonitor"
	some s in selected_services(item.obj)
	some ep in item.obj.spec.endpoints
	not ep.port in {p.name | some p in s.obj.spec.ports}
	msg := sprintf("endpoint port %q is not a port of Service %s", [ep.port, s.obj.metadata.name])
}
