package cloudlab.jvm_test

import data.cloudlab.jvm
import data.fixtures

es(opts, req, lim) := fixtures.deployment_with(object.union(fixtures.container, {
	"env": [{"name": "ES_JAVA_OPTS", "value": opts}],
	"resources": {"requests": {"cpu": "1", "memory": req}, "limits": {"memory": lim}},
}))

test_half_heap_with_request_equal_to_limit_passes if {
	count(jvm.deny) == 0 with input as fixtures.cluster([es("-Xms1g -Xmx1g", "2Gi", "2Gi")])
	count(jvm.deny) == 0 with input as fixtures.cluster([es("-Xms512m -Xmx512m", "1Gi", "1Gi")])
}

test_heap_over_half_is_denied if {
	bad := es("-Xms1536m -Xmx1536m", "2Gi", "2Gi")
	jvm.deny == {fixtures.finding(bad, `container "app": JVM heap 1536Mi is more than half its memory limit 2Gi`)} with input as fixtures.cluster([bad])
}

test_request_below_limit_is_denied if {
	bad := es("-Xmx1g", "1Gi", "2Gi")
	jvm.deny == {fixtures.finding(bad, `container "app" runs a JVM: set its memory request equal to its limit (2Gi)`)} with input as fixtures.cluster([bad])
}
