# Every container of a long-running workload has a liveness and a readiness probe: without
# readiness a rollout sends traffic to pods that cannot answer; without liveness a hung process
# is never restarted. Jobs and init containers finish, so they are not asked for probes.
package cloudlab.probes

import data.lib

deny contains lib.finding(item, msg) if {
	some item in lib.workloads
	item.obj.kind in lib.long_running_kinds
	some c in lib.pod_spec(item.obj).containers
	some probe in ["livenessProbe", "readinessProbe"]
	not c[probe]
	msg := sprintf("container %q has no %s: add one that tests the process, not just the port", [c.name, probe])
}
