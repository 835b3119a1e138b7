package cloudlab.services_test

import data.cloudlab.services
import data.fixtures

svc(selector, target) := {
	"apiVersion": "v1", "kind": "Service", "metadata": fixtures.meta("web"),
	"spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": target}]},
}

web := json.patch(fixtures.deployment, [{"op": "add", "path": "/spec/template/spec/containers/0/ports", "value": [{"name": "http", "containerPort": 8080}]}])

test_service_selecting_one_deployment_by_named_port_passes if {
	count(services.deny) == 0 with input as fixtures.cluster([web, svc({"app.kubernetes.io/name": "web"}, "http")])
}

test_service_selecting_nothing_is_denied if {
	bad := svc({"app.kubernetes.io/name": "nothing"}, "http")
	services.deny == {fixtures.finding(bad, "selector matches the pods of no Deployment, StatefulSet or DaemonSet: traffic would go nowhere")} with input as fixtures.cluster([web, bad])
}

test_service_selecting_two_deployments_is_denied if {
	other := json.patch(web, [{"op": "replace", "path": "/metadata/name", "value": "web-canary"}])
	bad := svc({"app.kubernetes.io/name": "web"}, "http")
	services.deny == {fixtures.finding(bad, "selector matches the pods of 2 workloads (Deployment/web, Deployment/web-canary): it must match exactly one")} with input as fixtures.cluster([web, other, bad])
}

test_unknown_target_port_name_is_denied if {
	bad := svc({"app.kubernetes.io/name": "web"}, "grpc")
	services.deny == {fixtures.finding(bad, `port "http" targets "grpc", which no container of Deployment/web names`)} with input as fixtures.cluster([web, bad])
}

sts(name) := {
	"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": object.union(fixtures.meta(name), {"labels": {"app.kubernetes.io/name": "db"}}),
	"spec": {"template": {"metadata": {"labels": {"app.kubernetes.io/name": "db"}}, "spec": {"containers": [{"name": "db", "ports": [{"name": "db", "containerPort": 5432}]}]}}},
}

test_one_store_over_several_statefulsets_passes if {
	count(services.deny) == 0 with input as fixtures.cluster([sts("db-shard-0"), sts("db-shard-1"), svc({"app.kubernetes.io/name": "db"}, "db")])
}

test_pod_name_selector_selects_its_statefulset if {
	primary := svc({"app.kubernetes.io/name": "db", "statefulset.kubernetes.io/pod-name": "db-shard-0-0"}, "db")
	count(services.deny) == 0 with input as fixtures.cluster([sts("db-shard-0"), primary])
	wrong := svc({"app.kubernetes.io/name": "db", "statefulset.kubernetes.io/pod-name": "other-0"}, "db")
	count(services.deny) == 1 with input as fixtures.cluster([sts("db-shard-0"), wrong])
}
