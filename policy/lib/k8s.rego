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

# excused(policy, f) holds when policy/exceptions.yaml excuses finding f of that policy; the Go
# harness (and reported, for the tests) drop excused findings, so no policy carries its own
# exception list. An entry names its policy, the object's kind, and either the object (name, and
# namespace when namespaced) or the upstream chart's Application whose objects of that kind it
# excuses; `finding`, when given, must be part of the message, so that an entry excuses one kind
# of finding (one label, one container, one rule) rather than everything about the object.
excused(policy, f) if {
	some e in data.exceptions
	excuses(e, policy, f)
}

# excuses(e, policy, f) when exception entry e excuses finding f of policy.
excuses(e, policy, f) if {
	e.policy == policy
	names_findings(e)
	object.get(e, "kind", f.kind) == f.kind
	object.get(e, "application", f.app) == f.app
	object.get(e, "name", f.name) == f.name
	object.get(e, "namespace", f.namespace) == f.namespace
	contains(f.msg, object.get(e, "finding", ""))
}

# names_findings(e): the entry says which findings it excuses (a kind, or a chart's Application
# and a finding); other entries (images' `image`, the Go tests' `backups`) mean something else.
names_findings(e) if e.kind

names_findings(e) if {
	e.application
	e.finding
}

# reported(policy, findings) is what remains of a policy's findings after the exceptions.
reported(policy, findings) := {f | some f in findings; not excused(policy, f)}

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

# selects(selector, labels) when a non-empty label selector holds for the labels: every
# matchLabels pair and every matchExpressions requirement (In, NotIn, Exists, DoesNotExist).
selects(selector, labels) if {
	ml := object.get(selector, "matchLabels", {})
	exprs := object.get(selector, "matchExpressions", [])
	count(ml) + count(exprs) > 0
	every k, v in ml {
		labels[k] == v
	}
	every e in exprs {
		requirement_holds(e, labels)
	}
}

requirement_holds(e, labels) if {
	e.operator == "In"
	labels[e.key] in e.values
}

requirement_holds(e, labels) if {
	e.operator == "NotIn"
	not labels[e.key] in e.values
}

requirement_holds(e, labels) if {
	e.operator == "Exists"
	_ = labels[e.key]
}

requirement_holds(e, labels) if {
	e.operator == "DoesNotExist"
	not has_key(labels, e.key)
}

has_key(m, k) if _ = m[k]
