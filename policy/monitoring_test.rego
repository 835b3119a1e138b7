package cloudlab.monitoring_test

import data.cloudlab.monitoring
import data.fixtures

svc := {"apiVersion": "v1", "kind": "Service", "metadata": fixtures.meta("web"), "spec": {"ports": [{"name": "http-metrics", "port": 9090}]}}

sm(port) := {
	"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": fixtures.meta("web"),
	"spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "web"}}, "endpoints": [{"port": port}]},
}

test_service_monitor_on_existing_port_passes if {
	count(monitoring.deny) == 0 with input as fixtures.cluster([svc, sm("http-metrics")])
}

test_missing_port_is_denied if {
	bad := sm("metrics")
	monitoring.deny == {fixtures.finding(bad, `endpoint port "metrics" is not a port of Service web`)} with input as fixtures.cluster([svc, bad])
}

test_selecting_no_service_is_denied if {
	bad := sm("http-metrics")
	monitoring.deny == {fixtures.finding(bad, "selects no Service in the namespaces it looks in: fix spec.selector or spec.namespaceSelector")} with input as fixtures.cluster([bad])
}

test_namespace_selector_looks_elsewhere if {
	other := json.patch(svc, [{"op": "replace", "path": "/metadata/namespace", "value": "kube-system"}])
	elsewhere := json.patch(sm("http-metrics"), [{"op": "add", "path": "/spec/namespaceSelector", "value": {"matchNames": ["kube-system"]}}])
	count(monitoring.deny) == 0 with input as fixtures.cluster([other, elsewhere])
	count(monitoring.deny) == 1 with input as fixtures.cluster([other, sm("http-metrics")])
}

test_target_port_endpoint_needs_no_service_port if {
	by_target := json.patch(sm("x"), [{"op": "replace", "path": "/spec/endpoints", "value": [{"targetPort": "http-metrics"}]}])
	count(monitoring.deny) == 0 with input as fixtures.cluster([svc, by_target])
}
