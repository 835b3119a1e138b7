package cloudlab.autoscaling_test

import data.cloudlab.autoscaling
import data.fixtures

hpa := {
	"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": fixtures.meta("web"),
	"spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 4,
		"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]},
}

vpa(mode) := {
	"apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler", "metadata": fixtures.meta("web"),
	"spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "updatePolicy": {"updateMode": mode}},
}

test_hpa_with_recommending_vpa_passes if {
	count(autoscaling.deny) == 0 with input as fixtures.cluster([fixtures.deployment, hpa, vpa("Off")])
}

test_acting_vpa_on_hpa_resource_is_denied if {
	bad := vpa("Recreate")
	autoscaling.deny == {fixtures.finding(bad, "updateMode Recreate controls cpu, which an HPA of the same workload scales on: use updateMode Off (recommendations) or drop those resources")} with input as fixtures.cluster([fixtures.deployment, hpa, bad])
}

test_acting_vpa_on_other_resource_passes if {
	memory_only := json.patch(vpa("Auto"), [{"op": "add", "path": "/spec/resourcePolicy", "value": {"containerPolicies": [{"containerName": "app", "controlledResources": ["memory"]}]}}])
	count(autoscaling.deny) == 0 with input as fixtures.cluster([fixtures.deployment, hpa, memory_only])
}

test_hpa_without_target_is_denied if {
	autoscaling.deny == {fixtures.finding(hpa, "scaleTargetRef Deployment/web does not exist in this namespace")} with input as fixtures.cluster([hpa])
}
