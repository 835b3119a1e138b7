# JVM stores: the heap (-Xmx in ES_JAVA_OPTS, KAFKA_HEAP_OPTS, SCHEMA_REGISTRY_HEAP_OPTS or
# JAVA_OPTS) is at most half the container's memory limit (the rest is page cache, direct buffers
# and metaspace), and the memory request equals the limit (no overcommit for a process that
# never returns memory).
package cloudlab.jvm

import data.lib

heap_vars := {"ES_JAVA_OPTS", "KAFKA_HEAP_OPTS", "SCHEMA_REGISTRY_HEAP_OPTS", "JAVA_OPTS"}

jvm_containers contains [item, c, heap] if {
	some item in lib.workloads
	some c in lib.pod_spec(item.obj).containers
	some e in object.get(c, "env", [])
	e.name in heap_vars
	some flag in split(e.value, " ")
	startswith(flag, "-Xmx")
	heap := jvm_bytes(trim_prefix(flag, "-Xmx"))
}

# jvm_bytes reads a JVM size: k, m, g are binary (1024-based), a bare number is bytes.
jvm_bytes(s) := units.parse_bytes(concat("", [substring(s, 0, count(s) - 1), upper(substring(s, count(s) - 1, 1)), "i"])) if {
	regex.match(`^[0-9]+[kKmMgG]$`, s)
}

jvm_bytes(s) := to_number(s) if regex.match(`^[0-9]+$`, s)

deny contains lib.finding(item, msg) if {
	some [item, c, heap] in jvm_containers
	limit := units.parse_bytes(c.resources.limits.memory)
	heap * 2 > limit
	msg := sprintf("container %q: JVM heap %s is more than half its memory limit %s", [c.name, human(heap), c.resources.limits.memory])
}

deny contains lib.finding(item, msg) if {
	some [item, c, _] in jvm_containers
	not c.resources.requests.memory == c.resources.limits.memory
	msg := sprintf("container %q runs a JVM: set its memory request equal to its limit (%v)", [c.name, object.get(c.resources, ["limits", "memory"], "unset")])
}

deny contains lib.finding(item, msg) if {
	some [item, c, _] in jvm_containers
	not c.resources.limits.memory
	msg := sprintf("container %q runs a JVM without a memory limit", [c.name])
}

human(b) := sprintf("%dMi", [round(b / 1048576)])
