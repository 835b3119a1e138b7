package cloudlab.resources_test

import data.cloudlab.resources
import data.fixtures

test_container_with_requests_and_memory_limit_passes if {
	count(resources.deny) == 0 with input as fixtures.cluster([fixtures.deployment])
}

test_missing_cpu_request_is_denied if {
	bad := fixtures.deployment_with(json.remove(fixtures.container, ["resources/requests/cpu"]))
	resources.deny == {fixtures.finding(bad, `container "app" has no resources.requests.cpu: set it (see docs/verify.md#resources)`)} with input as fixtures.cluster([bad])
}

test_missing_memory_limit_is_denied if {
	bad := fixtures.deployment_with(json.remove(fixtures.container, ["resources/limits"]))
	resources.deny == {fixtures.finding(bad, `container "app" has no resources.limits.memory: set it (see docs/verify.md#resources)`)} with input as fixtures.cluster([bad])
}

test_init_container_without_resources_is_denied if {
	bad := json.patch(fixtures.deployment, [{"op": "add", "path": "/spec/template/spec/initContainers", "value": [{"name": "init", "image": "busybox:1.37.0"}]}])
	count(resources.deny) == 3 with input as fixtures.cluster([bad])
}
