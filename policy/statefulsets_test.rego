package cloudlab.statefulsets_test

import data.cloudlab.statefulsets
import data.fixtures

sts := {
	"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": fixtures.meta("db"),
	"spec": {"serviceName": "db-headless", "template": {"metadata": {"labels": {"app.kubernetes.io/name": "db"}}, "spec": {"containers": []}}},
}

headless(ip) := {"apiVersion": "v1", "kind": "Service", "metadata": fixtures.meta("db-headless"), "spec": {"clusterIP": ip, "selector": {"app.kubernetes.io/name": "db"}}}

test_headless_service_passes if {
	count(statefulsets.deny) == 0 with input as fixtures.cluster([sts, headless("None")])
}

test_missing_service_is_denied if {
	statefulsets.deny == {fixtures.finding(sts, `serviceName "db-headless" is not a headless Service (clusterIP: None) of this namespace selecting its pods`)} with input as fixtures.cluster([sts])
}

test_non_headless_service_is_denied if {
	count(statefulsets.deny) == 1 with input as fixtures.cluster([sts, headless("10.0.0.1")])
}
