# Every container (init containers too) requests CPU and memory and has a memory limit: the
# scheduler can only place what declares its needs, and a container without a memory limit can
# take its node down. CPU limits are not required (throttling costs latency; requests suffice).
package cloudlab.resources

import data.lib

deny contains lib.finding(item, msg) if {
	some item in lib.workloads
	some x in lib.containers(lib.pod_spec(item.obj))
	some field in ["requests.cpu", "requests.memory", "limits.memory"]
	[section, resource] := split(field, ".")
	not x.c.resources[section][resource]
	msg := sprintf("container %q has no resources.%s: set it (see docs/verify.md#resources)", [x.c.name, field])
}
