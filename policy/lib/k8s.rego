# Shared helpers for every policy: what a workload is, its pod spec and containers, how a
# finding looks, and whether policy/exceptions.yaml excuses an object.
#
# Input (built by policytest/internal/check.Input): one whole cluster,
#   {"cluster": "prod", "cluster_scoped": ["Namespace", ...],
#    "objects": [{"app": "<Argo CD Application>", "obj": {<rendered object>}}, ...]}
package lib

# finding is what every policy's `deny` set holds; the Go harness prints it as
# <cluster>/<app>: <Kind>/<namespace>/<name>: <policy>: <msg>
finding(item, msg) := {
	"app": item.app,
	"kind": item.obj.kind,
	"namespace": object.get(item.obj.metadata, "namespace", ""),
	"name": item.obj.metadata.name,
	"msg": msg,
}

# excepted(policy, item) holds when policy/exceptions.yaml lists this object for this policy.
excepted(policy, item) if {
	some e in data.exceptions
	e.policy == policy
	e.kind == item.obj.kind
	e.name == item.obj.metadata.name
	object.get(e, "namespace", "") == object.get(item.obj.metadata, "namespace", "")
}

workload_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}

# Kinds whose pods run until stopped (probes make sense; Jobs finish).
long_running_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}

pod_spec(obj) := obj.spec.template.spec if obj.kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}

pod_spec(obj) := obj.spec.jobTemplate.spec.template.spec if obj.kind == "CronJob"

pod_spec(obj) := obj.spec if obj.kind == "Pod"

pod_labels(obj) := object.get(obj.spec.template, ["metadata", "labels"], {}) if obj.kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}

pod_labels(obj) := object.get(obj.spec.jobTemplate.spec.template, ["metadata", "labels"], {}) if obj.kind == "CronJob"

pod_labels(obj) := object.get(obj.metadata, "labels", {}) if obj.kind == "Pod"

# pod_spec_metadata(obj) is the pod template's metadata ({} for a bare Pod's own metadata).
pod_spec_metadata(obj) := object.get(obj.spec.template, "metadata", {}) if obj.kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}

pod_spec_metadata(obj) := object.get(obj.spec.jobTemplate.spec.template, "metadata", {}) if obj.kind == "CronJob"

pod_spec_metadata(obj) := obj.metadata if obj.kind == "Pod"

# workloads: every item that runs pods.
workloads contains item if {
	some item in input.objects
	item.obj.kind in workload_kinds
}

# containers(spec): every container of a pod spec, init containers included, each as
# {"c": <container>, "init": bool}.
containers(spec) := array.concat(
	[x | some c in object.get(spec, "containers", []); x := {"c": c, "init": false}],
	[x | some c in object.get(spec, "initContainers", []); x := {"c": c, "init": true}],
)

# is_namespaced(obj) for every kind not listed as cluster-scoped.
is_namespaced(obj) if not obj.kind in {k | some k in input.cluster_scoped}

# labels(obj) is the object's labels, or {} when it has none.
labels(obj) := object.get(obj.metadata, "labels", {})

# selects(selector, pod_labels) when a label selector's matchLabels all hold
# (matchExpressions are not used in this repository; a selector with them never matches here).
selects(selector, pod_labels) if {
	not selector.matchExpressions
	ml := object.get(selector, "matchLabels", {})
	count(ml) > 0
	every k, v in ml {
		pod_labels[k] == v
	}
}
