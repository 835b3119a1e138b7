# The recommended labels that tooling (Argo CD views, Prometheus relabelling, kubectl -l) relies
# on: every object names itself and says it is part of CloudLab; every pod template carries the
# name too, so pods can be selected like their owner.
package cloudlab.labels

import data.lib

required := ["app.kubernetes.io/name", "app.kubernetes.io/part-of"]

deny contains lib.finding(item, msg) if {
	some item in input.objects
	some l in required
	not lib.labels(item.obj)[l]
	msg := sprintf("label %s is missing: set it (kustomize `labels:` or the chart's helpers)", [l])
}

deny contains lib.finding(item, msg) if {
	some item in input.objects
	v := lib.labels(item.obj)["app.kubernetes.io/part-of"]
	v != "cloudlab"
	msg := sprintf("label app.kubernetes.io/part-of is %q: every object of this repository is part of cloudlab", [v])
}

deny contains lib.finding(item, "pod template has no label app.kubernetes.io/name: pods must be selectable like their owner") if {
	some item in lib.workloads
	item.obj.kind != "Pod"
	not lib.pod_labels(item.obj)["app.kubernetes.io/name"]
}
