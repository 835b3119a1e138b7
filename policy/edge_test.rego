package cloudlab.edge_test

import data.cloudlab.edge
import data.fixtures

cert := {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "edge", "namespace": "istio-ingress"}, "spec": {"secretName": "edge-tls"}}

gateway(servers) := {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "edge", "namespace": "istio-ingress"}, "spec": {"servers": servers}}

https(secret) := {"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["a.example.com"], "tls": {"mode": "SIMPLE", "credentialName": secret}}

redirect := {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["a.example.com"], "tls": {"httpsRedirect": true}}

svc := {"apiVersion": "v1", "kind": "Service", "metadata": fixtures.meta("web"), "spec": {"ports": [{"name": "http", "port": 8080}]}}

vs(host, port) := {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "api", "namespace": "istio-ingress"}, "spec": {"http": [{"name": "web", "route": [{"destination": {"host": host, "port": {"number": port}}}]}]}}

test_tls_gateway_and_existing_destination_pass if {
	count(edge.deny) == 0 with input as fixtures.cluster([cert, gateway([https("edge-tls"), redirect]), svc, vs("web.cloudlab.svc.cluster.local", 8080)])
}

test_plain_http_server_is_denied if {
	bad := gateway([{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["a.example.com"]}])
	edge.deny == {fixtures.finding(bad, "server http (port 80) is neither HTTPS with a cert-manager certificate nor an HTTP-to-HTTPS redirect")} with input as fixtures.cluster([cert, bad])
}

test_tls_secret_without_certificate_is_denied if {
	bad := gateway([https("hand-made-tls")])
	count(edge.deny) == 1 with input as fixtures.cluster([cert, bad])
}

test_destination_that_does_not_exist_is_denied if {
	bad := vs("shop.cloudlab.svc.cluster.local", 8080)
	edge.deny == {fixtures.finding(bad, `route "web" sends to shop.cloudlab.svc.cluster.local, which is not a Service of this cluster (use <service>.<namespace>.svc.cluster.local)`)} with input as fixtures.cluster([svc, bad])
}

test_wrong_port_is_denied if {
	bad := vs("web.cloudlab.svc.cluster.local", 80)
	edge.deny == {fixtures.finding(bad, `route "web" sends to port 80 of web.cloudlab.svc.cluster.local, which has ports [8080]`)} with input as fixtures.cluster([svc, bad])
}
