package cloudlab.secrets_test

import data.cloudlab.secrets
import data.fixtures

secret(extra) := object.union({"apiVersion": "v1", "kind": "Secret", "metadata": fixtures.meta("db")}, extra)

test_secret_without_data_passes if {
	count(secrets.deny) == 0 with input as fixtures.cluster([secret({"type": "Opaque"})])
}

test_secret_with_data_is_denied if {
	bad := secret({"data": {"password": "aHVudGVyMg=="}})
	secrets.deny == {fixtures.finding(bad, "carries data in git: deliver it with an ExternalSecret from the cloudlab-secrets store instead")} with input as fixtures.cluster([bad])
}

test_secret_with_string_data_is_denied if {
	bad := secret({"stringData": {"password": "hunter2"}})
	secrets.deny == {fixtures.finding(bad, "carries stringData in git: deliver it with an ExternalSecret from the cloudlab-secrets store instead")} with input as fixtures.cluster([bad])
}
