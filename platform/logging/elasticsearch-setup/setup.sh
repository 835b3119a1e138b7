#!/bin/sh
# Installs, idempotently, what the logging Elasticsearch serves (docs/observability.md#logging):
# - ILM policy `logs`: delete an index RETENTION_DAYS days after it was created. Fluent Bit writes
#   one index per day (logs-YYYY.MM.DD), so retention is whole days and no rollover is needed.
# - index template `logs` (logs-*): that policy, and REPLICAS replicas per shard.
# - role logs_writer and user fluent-bit (create documents and indices under logs-* only);
#   role logs_reader (for people's own users, created by an operator);
# - role jaeger_storage and user jaeger: Jaeger's span store, indices jaeger-* only (Jaeger
#   creates its own index templates; its chart's es-index-cleaner deletes old indices as jaeger);
# - the password of the built-in user kibana_system, which Kibana uses to reach Elasticsearch.
# Environment: ES (URL), ELASTIC_PASSWORD, FLUENT_BIT_PASSWORD, JAEGER_PASSWORD, KIBANA_SYSTEM_PASSWORD,
# RETENTION_DAYS, REPLICAS. Exits non-zero on the first request that fails.
set -eu
auth="elastic:${ELASTIC_PASSWORD}"
until curl -fsS -o /dev/null -u "$auth" "$ES/_cluster/health?wait_for_status=yellow&timeout=10s"; do
  echo "waiting for $ES"; sleep 5
done
call() { # METHOD PATH JSON
  echo "$1 $2"
  curl -fsS -u "$auth" -X "$1" "$ES$2" -H 'Content-Type: application/json' -d "$3"; echo
}
call PUT /_ilm/policy/logs "{\"policy\":{\"phases\":{\"hot\":{\"actions\":{}},\"delete\":{\"min_age\":\"${RETENTION_DAYS}d\",\"actions\":{\"delete\":{}}}}}}"
call PUT /_index_template/logs "{\"index_patterns\":[\"logs-*\"],\"priority\":100,\"template\":{\"settings\":{\"index.lifecycle.name\":\"logs\",\"index.number_of_replicas\":${REPLICAS}}}}"
call PUT /_security/role/logs_writer '{"cluster":["monitor"],"indices":[{"names":["logs-*"],"privileges":["create_doc","create_index","auto_configure"]}]}'
call PUT /_security/role/logs_reader '{"indices":[{"names":["logs-*"],"privileges":["read","view_index_metadata"]}]}'
call PUT /_security/user/fluent-bit "{\"password\":\"${FLUENT_BIT_PASSWORD}\",\"roles\":[\"logs_writer\"]}"
call PUT /_security/role/jaeger_storage '{"cluster":["monitor","manage_index_templates"],"indices":[{"names":["jaeger-*"],"privileges":["all"]}]}'
call PUT /_security/user/jaeger "{\"password\":\"${JAEGER_PASSWORD}\",\"roles\":[\"jaeger_storage\"]}"
call POST /_security/user/kibana_system/_password "{\"password\":\"${KIBANA_SYSTEM_PASSWORD}\"}"
