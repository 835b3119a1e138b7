package cloudlab.pdb_test

import data.cloudlab.pdb
import data.fixtures

three := fixtures.replicas(3)

key := "Deployment/cloudlab/web"

test_replicated_workload_with_one_good_pdb_passes if {
	count(pdb.deny) == 0 with input as fixtures.cluster([three, fixtures.pdb({"maxUnavailable": 1})])
}

test_replicated_workload_without_pdb_is_denied if {
	pdb.deny == {fixtures.finding(three, "runs at least 3 replicas but no PodDisruptionBudget selects it: add one (maxUnavailable: 1)")} with input as fixtures.cluster([three])
}

test_hpa_min_replicas_counts if {
	hpa := {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": fixtures.meta("web"), "spec": {"minReplicas": 2, "maxReplicas": 5, "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}}
	one := json.remove(fixtures.deployment, ["spec/replicas"])
	pdb.deny == {fixtures.finding(one, "runs at least 2 replicas but no PodDisruptionBudget selects it: add one (maxUnavailable: 1)")} with input as fixtures.cluster([one, hpa])
}

test_two_pdbs_are_denied if {
	second := json.patch(fixtures.pdb({"maxUnavailable": 1}), [{"op": "replace", "path": "/metadata/name", "value": "web-2"}])
	pdb.deny == {fixtures.finding(three, "is selected by 2 PodDisruptionBudgets (web, web-2): keep exactly one")} with input as fixtures.cluster([three, fixtures.pdb({"maxUnavailable": 1}), second])
}

test_max_unavailable_zero_is_denied if {
	bad := fixtures.pdb({"maxUnavailable": 0})
	pdb.deny == {fixtures.finding(bad, "maxUnavailable 0 forbids every voluntary disruption, so node drains hang: allow at least 1")} with input as fixtures.cluster([three, bad])
}

test_min_available_all_replicas_is_denied if {
	bad := fixtures.pdb({"minAvailable": 3})
	pdb.deny == {fixtures.finding(bad, sprintf("minAvailable 3 leaves no replica of %s to disrupt, so node drains hang: use maxUnavailable: 1", [key]))} with input as fixtures.cluster([three, bad])
}

test_pdb_on_single_replica_is_denied if {
	bad := fixtures.pdb({"maxUnavailable": 1})
	pdb.deny == {fixtures.finding(bad, sprintf("selects %s, which can run a single replica: a PDB there blocks every node drain; remove it", [key]))} with input as fixtures.cluster([fixtures.deployment, bad])
}

test_pdb_selecting_nothing_is_denied if {
	bad := json.patch(fixtures.pdb({"maxUnavailable": 1}), [{"op": "replace", "path": "/spec/selector/matchLabels", "value": {"app.kubernetes.io/name": "nothing"}}])
	pdb.deny == {fixtures.finding(bad, "selects no Deployment or StatefulSet: fix spec.selector or remove it"), fixtures.finding(three, "runs at least 3 replicas but no PodDisruptionBudget selects it: add one (maxUnavailable: 1)")} with input as fixtures.cluster([three, bad])
}

test_missing_unhealthy_pod_eviction_policy_is_denied if {
	bad := json.remove(fixtures.pdb({"maxUnavailable": 1}), ["spec/unhealthyPodEvictionPolicy"])
	pdb.deny == {fixtures.finding(bad, "unhealthyPodEvictionPolicy is not AlwaysAllow: a crash-looping pod would block node drains")} with input as fixtures.cluster([three, bad])
}

test_pdb_selecting_two_workloads_is_denied if {
	broad := json.patch(fixtures.pdb({"maxUnavailable": 1}), [{"op": "replace", "path": "/spec/selector/matchLabels", "value": {"app.kubernetes.io/part-of": "cloudlab"}}])
	other := json.patch(three, [{"op": "replace", "path": "/metadata/name", "value": "api"}])
	pdb.deny[fixtures.finding(broad, "selects 2 workloads (Deployment/cloudlab/api, Deployment/cloudlab/web): a PDB protects exactly one")] with input as fixtures.cluster([three, other, broad])
}
