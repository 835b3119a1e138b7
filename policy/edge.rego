# The edge serves TLS only, and routes only to what exists:
# - every Gateway server is HTTPS (tls.mode SIMPLE or MUTUAL) with a credentialName that is the
#   secretName of a cert-manager Certificate in the Gateway's namespace, or plain HTTP that only
#   redirects to HTTPS;
# - every VirtualService destination is an existing Service (by its cluster-local FQDN) on one of
#   that Service's ports.
package cloudlab.edge

import data.lib

certificate_secrets(ns) := {c.obj.spec.secretName |
	some c in input.objects
	c.obj.kind == "Certificate"
	c.obj.metadata.namespace == ns
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind == "Gateway"
	item.obj.apiVersion == "networking.istio.io/v1"
	some server in item.obj.spec.servers
	not server_ok(server, item.obj.metadata.namespace)
	msg := sprintf("server %s (port %v) is neither HTTPS with a cert-manager certificate nor an HTTP-to-HTTPS redirect", [object.get(server.port, "name", "?"), server.port.number])
}

server_ok(server, ns) if {
	server.port.protocol == "HTTPS"
	server.tls.mode in {"SIMPLE", "MUTUAL"}
	server.tls.credentialName in certificate_secrets(ns)
}

server_ok(server, _) if {
	server.port.protocol == "HTTP"
	server.tls.httpsRedirect == true
}

services := {sprintf("%s.%s.svc.cluster.local", [s.obj.metadata.name, s.obj.metadata.namespace]): {p.port | some p in s.obj.spec.ports} |
	some s in input.objects
	s.obj.kind == "Service"
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind == "VirtualService"
	some route in object.get(item.obj.spec, "http", [])
	some r in route.route
	host := r.destination.host
	not services[host]
	msg := sprintf("route %q sends to %s, which is not a Service of this cluster (use <service>.<namespace>.svc.cluster.local)", [object.get(route, "name", ""), host])
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind == "VirtualService"
	some route in object.get(item.obj.spec, "http", [])
	some r in route.route
	ports := services[r.destination.host]
	not r.destination.port.number in ports
	msg := sprintf("route %q sends to port %v of %s, which has ports %v", [object.get(route, "name", ""), object.get(r.destination, ["port", "number"], "(none)"), r.destination.host, sort(ports)])
}
