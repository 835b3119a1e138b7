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
	services.deny == {fixtures.finding(bad, "selector matches the pods of 0 Deployments/StatefulSets: it must match exactly one")} with input as fixtures.cluster([web, bad])
}

test_service_selecting_two_deployments_is_denied if {
	other := json.patch(web, [{"op": "replace", "path": "/metadata/name", "value": "web-canary"}])
	bad := svc({"app.kubernetes.io/name": "web"}, "http")
	services.deny == {fixtures.finding(bad, "selector matches the pods of 2 Deployments/StatefulSets: it must match exactly one")} with input as fixtures.cluster([web, other, bad])
}

test_unknown_target_port_name_is_denied if {
	bad := svc({"app.kubernetes.io/name": "web"}, "grpc")
	services.deny == {fixtures.finding(bad, `port "http" targets "grpc", which no container of Deployment/web names`)} with input as fixtures.cluster([web, bad])
}
