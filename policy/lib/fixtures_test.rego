# Objects the policy tests start from: each is valid under every policy, and a test breaks
# exactly one thing about it. (Loaded with the policies but only used by *_test.rego.)
package fixtures

import data.lib

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

# The exceptions of policy/exceptions.yaml excuse exactly what they name.
test_exception_by_object if {
	f := {"app": "istiod", "kind": "Deployment", "namespace": "istio-system", "name": "istiod", "msg": "container \"discovery\" has no livenessProbe"}
	e := {"policy": "probes", "kind": "Deployment", "namespace": "istio-system", "name": "istiod", "reason": "test"}
	lib.excused("probes", f) with data.exceptions as [e]
	not lib.excused("resources", f) with data.exceptions as [e]
	not lib.excused("probes", json.patch(f, [{"op": "replace", "path": "/name", "value": "other"}])) with data.exceptions as [e]
	not lib.excused("probes", json.patch(f, [{"op": "replace", "path": "/kind", "value": "StatefulSet"}])) with data.exceptions as [e]
}

test_exception_by_application_and_finding if {
	f := {"app": "argocd", "kind": "Service", "namespace": "argocd", "name": "argocd-server", "msg": "label app.kubernetes.io/part-of is \"argocd\": every object of this repository is part of cloudlab"}
	e := {"policy": "labels", "application": "argocd", "kind": "Service", "finding": "label app.kubernetes.io/part-of is \"argocd\"", "reason": "test"}
	lib.excused("labels", f) with data.exceptions as [e]
	not lib.excused("labels", json.patch(f, [{"op": "replace", "path": "/app", "value": "services"}])) with data.exceptions as [e]
	not lib.excused("labels", json.patch(f, [{"op": "replace", "path": "/msg", "value": "label app.kubernetes.io/name is missing"}])) with data.exceptions as [e]
}

test_selectors if {
	labels := {"app": "web", "tier": "front"}
	lib.selects({"matchLabels": {"app": "web"}}, labels)
	lib.selects({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}, labels)
	lib.selects({"matchExpressions": [{"key": "tier", "operator": "Exists"}, {"key": "zone", "operator": "DoesNotExist"}]}, labels)
	lib.selects({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["api"]}]}, labels)
	not lib.selects({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["back"]}]}, labels)
	not lib.selects({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, labels)
	not lib.selects({}, labels)
}

test_exception_without_kind_or_finding_excuses_nothing if {
	f := {"app": "services", "kind": "Deployment", "namespace": "cloudlab", "name": "web", "msg": "container \"web\" image \"nginx:latest\" is not pinned"}
	not lib.excused("images", f) with data.exceptions as [{"policy": "images", "image": "postgres", "reason": "test"}]
	not lib.excused("images", f) with data.exceptions as [{"policy": "images", "application": "services", "reason": "test"}]
}
