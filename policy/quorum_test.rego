package cloudlab.quorum_test

import data.cloudlab.quorum
import data.fixtures

keeper(n) := {
	"apiVersion": "apps/v1", "kind": "StatefulSet",
	"metadata": {"name": "keeper", "namespace": "cloudlab", "labels": {"app.kubernetes.io/name": "keeper", "cloudlab.io/quorum": "true"}},
	"spec": {"replicas": n, "serviceName": "keeper", "selector": {"matchLabels": {"app.kubernetes.io/name": "keeper"}}, "template": {"metadata": {"labels": {"app.kubernetes.io/name": "keeper"}}, "spec": {"containers": []}}},
}

pdb(spec) := {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": fixtures.meta("keeper"), "spec": object.union({"selector": {"matchLabels": {"app.kubernetes.io/name": "keeper"}}}, spec)}

test_three_with_max_unavailable_one_passes if {
	count(quorum.deny) == 0 with input as fixtures.cluster([keeper(3), pdb({"maxUnavailable": 1})])
	count(quorum.deny) == 0 with input as fixtures.cluster([keeper(1)])
}

test_even_quorum_is_denied if {
	quorum.deny[fixtures.finding(keeper(2), "is a quorum of 2: use 1 (dev) or an odd size of at least 3")] with input as fixtures.cluster([keeper(2), pdb({"maxUnavailable": 0})])
	count(quorum.deny) == 1 with input as fixtures.cluster([keeper(4), pdb({"maxUnavailable": 1})])
}

test_pdb_that_loses_the_majority_is_denied if {
	quorum.deny == {fixtures.finding(keeper(3), "PodDisruptionBudget keeper lets 2 of 3 quorum members go at once: a majority needs at most 1")} with input as fixtures.cluster([keeper(3), pdb({"maxUnavailable": 2})])
	count(quorum.deny) == 1 with input as fixtures.cluster([keeper(5), pdb({"minAvailable": 2})])
}

test_quorum_without_pdb_is_denied if {
	quorum.deny == {fixtures.finding(keeper(3), "is a quorum of 3 without a PodDisruptionBudget: a drain could take the majority")} with input as fixtures.cluster([keeper(3)])
}
