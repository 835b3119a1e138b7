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
	monitoring.deny == {fixtures.finding(bad, "selects no Service in its namespace: fix spec.selector")} with input as fixtures.cluster([bad])
}
