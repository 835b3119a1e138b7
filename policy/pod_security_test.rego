package cloudlab.pod_security_test

import data.cloudlab.pod_security
import data.fixtures

with_sc(sc) := fixtures.deployment_with(object.union(fixtures.container, {"securityContext": object.union(fixtures.container.securityContext, sc)}))

test_restricted_deployment_passes if {
	count(pod_security.deny) == 0 with input as fixtures.cluster([fixtures.deployment])
}

test_root_is_denied if {
	bad := json.patch(fixtures.deployment, [{"op": "replace", "path": "/spec/template/spec/securityContext/runAsNonRoot", "value": false}])
	pod_security.deny == {fixtures.finding(bad, `container "app": runAsNonRoot is not true (pod or container securityContext)`)} with input as fixtures.cluster([bad])
}

test_container_level_overrides_pod_level if {
	good := fixtures.deployment_with(object.union(fixtures.container, {"securityContext": object.union(fixtures.container.securityContext, {"runAsNonRoot": true})}))
	bad := json.patch(good, [{"op": "replace", "path": "/spec/template/spec/containers/0/securityContext/runAsNonRoot", "value": false}])
	count(pod_security.deny) == 0 with input as fixtures.cluster([good])
	count(pod_security.deny) == 1 with input as fixtures.cluster([bad])
}

test_missing_seccomp_is_denied if {
	bad := json.remove(fixtures.deployment, ["spec/template/spec/securityContext/seccompProfile"])
	pod_security.deny == {fixtures.finding(bad, `container "app": seccompProfile is not RuntimeDefault: set securityContext.seccompProfile.type`)} with input as fixtures.cluster([bad])
}

test_privilege_escalation_is_denied if {
	bad := with_sc({"allowPrivilegeEscalation": true})
	pod_security.deny == {fixtures.finding(bad, `container "app": allowPrivilegeEscalation is not false`)} with input as fixtures.cluster([bad])
}

test_capabilities_not_dropped_are_denied if {
	bad := with_sc({"capabilities": {"drop": ["NET_RAW"], "add": ["NET_ADMIN"]}})
	pod_security.deny == {
		fixtures.finding(bad, `container "app": capabilities.drop does not contain ALL`),
		fixtures.finding(bad, `container "app": adds capability NET_ADMIN: only NET_BIND_SERVICE is allowed`),
	} with input as fixtures.cluster([bad])
}

test_writable_root_filesystem_is_denied if {
	bad := with_sc({"readOnlyRootFilesystem": false})
	pod_security.deny == {fixtures.finding(bad, `container "app": readOnlyRootFilesystem is not true: mount an emptyDir where it must write`)} with input as fixtures.cluster([bad])
}

test_host_network_and_host_path_are_denied if {
	bad := json.patch(fixtures.deployment, [
		{"op": "add", "path": "/spec/template/spec/hostNetwork", "value": true},
		{"op": "add", "path": "/spec/template/spec/volumes", "value": [{"name": "root", "hostPath": {"path": "/"}}]},
	])
	pod_security.deny == {
		fixtures.finding(bad, "hostNetwork is true: pods share no host namespace under the restricted profile"),
		fixtures.finding(bad, `volume "root" is a hostPath: use a PersistentVolumeClaim, emptyDir, configMap or secret`),
	} with input as fixtures.cluster([bad])
}
