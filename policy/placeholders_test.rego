package cloudlab.placeholders_test

import data.cloudlab.placeholders
import data.fixtures

test_filled_in_values_pass if {
	count(placeholders.deny) == 0 with input as fixtures.cluster([fixtures.deployment])
}

test_leftover_placeholder_is_denied if {
	bad := json.patch(fixtures.deployment, [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "IMAGE-SET-BY-CLUSTER"}])
	placeholders.deny == {fixtures.finding(bad, `spec.template.spec.containers.0.image is still the placeholder "IMAGE-SET-BY-CLUSTER": set it in clusters/<env>/`)} with input as fixtures.cluster([bad])
}
