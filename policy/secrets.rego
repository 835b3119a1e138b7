# No credential is ever in git, dev included: a Secret with data or stringData is refused.
# Secrets reach the cluster through ExternalSecret objects and the environment's store
# (platform/secret-stores).
package cloudlab.secrets

import data.lib

deny contains lib.finding(item, msg) if {
	some item in input.objects
	item.obj.kind == "Secret"
	some field in ["data", "stringData"]
	count(object.get(item.obj, field, {})) > 0
	msg := sprintf("carries %s in git: deliver it with an ExternalSecret from the cloudlab-secrets store instead", [field])
}
