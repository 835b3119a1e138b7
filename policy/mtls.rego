# Mesh traffic stays mutually authenticated: no PeerAuthentication may set PERMISSIVE or
# DISABLE (for the whole workload or one port), and no DestinationRule may turn client TLS off,
# unless policy/exceptions.yaml names that object with its reason.
package cloudlab.mtls

import data.lib

weak_modes := {"PERMISSIVE", "DISABLE"}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind == "PeerAuthentication"
	some where, mode in peer_modes(item.obj)
	mode in weak_modes
	msg := sprintf("%s mTLS mode is %s: use STRICT (or add a reviewed entry to policy/exceptions.yaml)", [where, mode])
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind == "DestinationRule"
	some where, mode in client_tls_modes(item.obj)
	mode == "DISABLE"
	msg := sprintf("%s tls.mode is DISABLE, which sends plaintext inside the mesh: use ISTIO_MUTUAL or leave it unset", [where])
}

peer_modes(pa) := object.union(
	{"workload": m | m := pa.spec.mtls.mode},
	{sprintf("port %v", [port]): m | some port, s in object.get(pa.spec, "portLevelMtls", {}); m := s.mode},
)

client_tls_modes(dr) := object.union(
	{"trafficPolicy": m | m := dr.spec.trafficPolicy.tls.mode},
	{sprintf("trafficPolicy port %v", [s.port.number]): m | some s in object.get(dr.spec, ["trafficPolicy", "portLevelSettings"], []); m := s.tls.mode},
)
