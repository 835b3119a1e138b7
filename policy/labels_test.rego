package cloudlab.labels_test

import data.cloudlab.labels
import data.fixtures

test_labelled_objects_pass if {
	count(labels.deny) == 0 with input as fixtures.cluster([fixtures.deployment, fixtures.namespace("cloudlab", "restricted")])
}

test_missing_name_label_is_denied if {
	bad := json.remove(fixtures.deployment, ["metadata/labels/app.kubernetes.io~1name"])
	labels.deny == {fixtures.finding(bad, "label app.kubernetes.io/name is missing: set it (kustomize `labels:` or the chart's helpers)")} with input as fixtures.cluster([bad])
}

test_wrong_part_of_is_denied if {
	bad := json.patch(fixtures.deployment, [{"op": "replace", "path": "/metadata/labels/app.kubernetes.io~1part-of", "value": "shop"}])
	labels.deny == {fixtures.finding(bad, `label app.kubernetes.io/part-of is "shop": every object of this repository is part of cloudlab`)} with input as fixtures.cluster([bad])
}

test_unlabelled_pod_template_is_denied if {
	bad := json.remove(fixtures.deployment, ["spec/template/metadata/labels/app.kubernetes.io~1name"])
	labels.deny == {fixtures.finding(bad, "pod template has no label app.kubernetes.io/name: pods must be selectable like their owner")} with input as fixtures.cluster([bad])
}
