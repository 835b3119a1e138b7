# Every ServiceMonitor scrapes something: its selector matches a Service in the namespaces it
# looks in (its own, or spec.namespaceSelector), and each endpoint that names a Service port
# names one that Service has. A ServiceMonitor that matches nothing fails silently in
# Prometheus; here it fails the build.
package cloudlab.monitoring

import data.lib

# looks_in(sm, ns) when the ServiceMonitor considers Services of namespace ns.
looks_in(sm, ns) if {
	not sm.spec.namespaceSelector
	ns == object.get(sm.metadata, "namespace", "")
}

looks_in(sm, ns) if ns in object.get(sm.spec, ["namespaceSelector", "matchNames"], [])

looks_in(sm, _) if sm.spec.namespaceSelector.any == true

selected_services(sm) := [s |
	some s in input.objects
	s.obj.kind == "Service"
	looks_in(sm, object.get(s.obj.metadata, "namespace", ""))
	lib.selects(sm.spec.selector, lib.labels(s.obj))
]

deny contains lib.finding(item, "selects no Service in the namespaces it looks in: fix spec.selector or spec.namespaceSelector") if {
	some item in input.objects
	item.obj.kind == "ServiceMonitor"
	count(selected_services(item.obj)) == 0
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind == "ServiceMonitor"
	some s in selected_services(item.obj)
	some ep in item.obj.spec.endpoints
	ep.port
	not ep.port in {p.name | some p in s.obj.spec.ports}
	msg := sprintf("endpoint port %q is not a port of Service %s", [ep.port, s.obj.metadata.name])
}
