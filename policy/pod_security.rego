# The Pod Security `restricted` profile, checked in git rather than discovered at admission:
# non-root, seccomp RuntimeDefault (or Localhost), no privilege escalation, all capabilities
# dropped (NET_BIND_SERVICE may be added back), read-only root filesystem, no privileged
# containers and no host namespaces or hostPath volumes. A workload that cannot comply is named
# in policy/exceptions.yaml with its reason.
package cloudlab.pod_security

import data.lib

deny contains lib.finding(item, msg) if {
	some item in lib.workloads
	spec := lib.pod_spec(item.obj)
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	spec[field] == true
	msg := sprintf("%s is true: pods share no host namespace under the restricted profile", [field])
}

deny contains lib.finding(item, msg) if {
	some item in lib.workloads
	some v in object.get(lib.pod_spec(item.obj), "volumes", [])
	v.hostPath
	msg := sprintf("volume %q is a hostPath: use a PersistentVolumeClaim, emptyDir, configMap or secret", [v.name])
}

# effective(spec, c, field, fallback) is the container's securityContext field, else the pod's,
# else fallback: the container's setting wins, as in Kubernetes.
effective(spec, c, field, fallback) := object.get(c, ["securityContext", field], object.get(spec, ["securityContext", field], fallback))

# targets: every container of every workload that has no exception, with its pod spec.
targets contains {"item": item, "spec": spec, "c": x.c} if {
	some item in lib.workloads
	spec := lib.pod_spec(item.obj)
	some x in lib.containers(spec)
}

problem(t, text) := lib.finding(t.item, sprintf("container %q: %s", [t.c.name, text]))

deny contains problem(t, "runAsNonRoot is not true (pod or container securityContext)") if {
	some t in targets
	effective(t.spec, t.c, "runAsNonRoot", false) != true
}

deny contains problem(t, "runs as user 0: run as a non-root UID") if {
	some t in targets
	effective(t.spec, t.c, "runAsUser", -1) == 0
}

deny contains problem(t, "seccompProfile is not RuntimeDefault: set securityContext.seccompProfile.type") if {
	some t in targets
	not object.get(effective(t.spec, t.c, "seccompProfile", {}), "type", "") in {"RuntimeDefault", "Localhost"}
}

deny contains problem(t, "allowPrivilegeEscalation is not false") if {
	some t in targets
	not t.c.securityContext.allowPrivilegeEscalation == false
}

deny contains problem(t, "privileged is true") if {
	some t in targets
	t.c.securityContext.privileged == true
}

deny contains problem(t, "capabilities.drop does not contain ALL") if {
	some t in targets
	not "ALL" in object.get(t.c, ["securityContext", "capabilities", "drop"], [])
}

deny contains problem(t, sprintf("adds capability %s: only NET_BIND_SERVICE is allowed", [cap])) if {
	some t in targets
	some cap in object.get(t.c, ["securityContext", "capabilities", "add"], [])
	cap != "NET_BIND_SERVICE"
}

deny contains problem(t, "readOnlyRootFilesystem is not true: mount an emptyDir where it must write") if {
	some t in targets
	not t.c.securityContext.readOnlyRootFilesystem == true
}
