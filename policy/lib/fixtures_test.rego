# Objects the policy tests start from: each is valid under every policy, and a test breaks
# exactly one thing about it. (Loaded with the policies but only used by *_test.rego.)
package fixtures

container := {
	"name": "app",
	"image": "ghcr.io/cloudlab/web:1.2.3",
	"resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
	"livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
	"readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}},
	"securityContext": {
		"allowPrivilegeEscalation": false,
		"readOnlyRootFilesystem": true,
		"capabilities": {"drop": ["ALL"]},
	},
}

meta(name) := {"name": name, "namespace": "cloudlab", "labels": {
	"app.kubernetes.io/name": name,
	"app.kubernetes.io/part-of": "cloudlab",
}}

deployment := {
	"apiVersion": "apps/v1",
	"kind": "Deployment",
	"metadata": meta("web"),
	"spec": {
		"replicas": 1,
		"selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
		"template": {
			"metadata": {"labels": {"app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "cloudlab"}},
			"spec": {
				"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
				"containers": [container],
			},
		},
	},
}

# deployment_with(c): the deployment with its one container replaced by c.
deployment_with(c) := json.patch(deployment, [{"op": "replace", "path": "/spec/template/spec/containers/0", "value": c}])

# replicas(n): the deployment scaled to n.
replicas(n) := json.patch(deployment, [{"op": "replace", "path": "/spec/replicas", "value": n}])

pdb(spec) := {
	"apiVersion": "policy/v1",
	"kind": "PodDisruptionBudget",
	"metadata": meta("web"),
	"spec": object.union({"selector": {"matchLabels": {"app.kubernetes.io/name": "web"}}, "unhealthyPodEvictionPolicy": "AlwaysAllow"}, spec),
}

namespace(name, level) := {
	"apiVersion": "v1",
	"kind": "Namespace",
	"metadata": {"name": name, "labels": {
		"app.kubernetes.io/name": name,
		"app.kubernetes.io/part-of": "cloudlab",
		"cloudlab.io/workload-namespace": "true",
		"pod-security.kubernetes.io/enforce": level,
	}},
}

default_deny := {
	"apiVersion": "networking.k8s.io/v1",
	"kind": "NetworkPolicy",
	"metadata": meta("default-deny"),
	"spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
}

# cluster(objs): a policy input holding objs, deployed by Application "test".
cluster(objs) := {
	"cluster": "test",
	"cluster_scoped": ["Namespace", "ClusterRole", "PriorityClass"],
	"objects": [{"app": "test", "obj": o} | some o in objs],
}

# finding(obj, msg): what a policy reports for obj in cluster(...).
finding(obj, msg) := {
	"app": "test",
	"kind": obj.kind,
	"namespace": object.get(obj.metadata, "namespace", ""),
	"name": obj.metadata.name,
	"msg": msg,
}
