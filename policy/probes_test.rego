package cloudlab.probes_test

import data.cloudlab.probes
import data.fixtures

test_container_with_both_probes_passes if {
	count(probes.deny) == 0 with input as fixtures.cluster([fixtures.deployment])
}

test_missing_readiness_probe_is_denied if {
	bad := fixtures.deployment_with(json.remove(fixtures.container, ["readinessProbe"]))
	probes.deny == {fixtures.finding(bad, `container "app" has no readinessProbe: add one that tests the process, not just the port`)} with input as fixtures.cluster([bad])
}

test_missing_liveness_probe_is_denied if {
	bad := fixtures.deployment_with(json.remove(fixtures.container, ["livenessProbe"]))
	probes.deny == {fixtures.finding(bad, `container "app" has no livenessProbe: add one that tests the process, not just the port`)} with input as fixtures.cluster([bad])
}

test_job_needs_no_probes if {
	job := {"apiVersion": "batch/v1", "kind": "Job", "metadata": fixtures.meta("once"), "spec": {"template": {"spec": {"containers": [json.remove(fixtures.container, ["livenessProbe", "readinessProbe"])]}}}}
	count(probes.deny) == 0 with input as fixtures.cluster([job])
}
