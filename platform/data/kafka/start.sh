#!/bin/sh
# Starts one Kafka node: renders its server.properties from the pod's identity and the ConfigMap,
# formats its log directory when that holds no meta.properties, and runs Kafka. How a node with an
# empty log directory is formatted (docs/data/kafka.md, "The controller quorum"):
#   - a broker: without initial controllers (brokers are never voters);
#   - a controller, when a quorum already answers: without initial controllers, so it gets a new
#     directory id; it starts as an observer, and once it has caught up ensure_voter removes the
#     voter its node id had (the lost directory) and adds the new one (KIP-853);
#   - a controller, when no quorum answers within QUORUM_PROBE_SECONDS (every controller's first
#     start, or a quorum of one): the very first formation, with --initial-controllers.
set -eu
bin="${KAFKA_HOME:-/opt/kafka}/bin"
ordinal="${HOSTNAME##*-}"
node_id=$((NODE_ID_OFFSET + ordinal))
host="$HOSTNAME.$HEADLESS.cloudlab-data.svc.cluster.local"
case "$ROLES" in
  broker,controller) listeners="PLAINTEXT://:9092,CONTROLLER://:9093"; advertised="PLAINTEXT://$host:9092,CONTROLLER://$host:9093" ;;
  controller)        listeners="CONTROLLER://:9093";                   advertised="CONTROLLER://$host:9093" ;;
  broker)            listeners="PLAINTEXT://:9092";                    advertised="PLAINTEXT://$host:9092" ;;
  *) echo "unknown ROLES $ROLES"; exit 1 ;;
esac
sed -e "s|@NODE_ID@|$node_id|" -e "s|@ROLES@|$ROLES|" -e "s|@LISTENERS@|$listeners|" \
    -e "s|@ADVERTISED@|$advertised|" -e "s|@QUORUM@|$QUORUM_BOOTSTRAP|" \
    -e "s|@RF@|$REPLICATION_FACTOR|g" -e "s|@MIN_ISR@|$MIN_INSYNC_REPLICAS|g" \
    /config/server.properties > /tmp/server.properties
log_dir=$(sed -n 's/^log\.dirs=//p' /tmp/server.properties)
# Short timeouts for the quorum tool: a quorum that does not answer in seconds is not there.
printf 'request.timeout.ms=5000\ndefault.api.timeout.ms=10000\n' > /tmp/admin.properties
# The tools run in the broker's container: a small heap of their own, not the broker's.
tool() { KAFKA_HEAP_OPTS="-Xmx128m" "$bin/$@"; }
quorum() { tool kafka-metadata-quorum.sh --bootstrap-controller "$QUORUM_BOOTSTRAP" "$@"; }

# Does a quorum (a leader) answer? Tried for QUORUM_PROBE_SECONDS; a quorum of this node alone
# cannot answer, so it is not asked.
quorum_answers() {
  [ "$QUORUM_BOOTSTRAP" != "$host:9093" ] || return 1
  deadline=$(($(date +%s) + ${QUORUM_PROBE_SECONDS:-60}))
  until quorum --command-config /tmp/admin.properties describe --status >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 2
  done
}

# Controllers, after every start: make sure this directory is a voter. After the first formation it
# already is (a no-op). A controller formatted to join starts as an observer: once it has caught up
# with the metadata log, remove the voter that had this node id with another directory (the lost
# one) and add this directory. Tried for ten minutes; the next start tries again.
ensure_voter() {
  dir_id=$(sed -n 's/^directory\.id=//p' "$log_dir/meta.properties")
  tries=0
  until quorum --command-config /tmp/admin.properties describe --replication 2>/dev/null |
      awk -v id="$node_id" -v dir="$dir_id" '$1 == id && $2 == dir && $4 == 0 {ok = 1} END {exit !ok}'; do
    tries=$((tries + 1))
    [ "$tries" -lt 120 ] || { echo "quorum: not caught up after 10 minutes; the next start tries again"; return 1; }
    sleep 5
  done
  voter=$(quorum --command-config /tmp/admin.properties describe --status |
    sed -n 's/^CurrentVoters:[[:space:]]*//p' | tr '{' '\n' |
    sed -n "s/^\"id\":[[:space:]]*$node_id,[[:space:]]*\"directoryId\":[[:space:]]*\"\([^\"]*\)\".*/\1/p")
  [ "$voter" != "$dir_id" ] || return 0
  if [ -n "$voter" ]; then
    echo "quorum: removing voter $node_id with the lost directory $voter"
    quorum --command-config /tmp/admin.properties remove-controller --controller-id "$node_id" --controller-directory-id "$voter"
  fi
  echo "quorum: adding voter $node_id with directory $dir_id"
  quorum --command-config /tmp/server.properties add-controller
}

if [ ! -f "$log_dir/meta.properties" ]; then
  case "$ROLES" in
    *controller*)
      if quorum_answers; then
        echo "storage: empty log directory, a quorum answers: formatting to join it (new directory id)"
        tool kafka-storage.sh format -t "$CLUSTER_ID" -c /tmp/server.properties --no-initial-controllers
      else
        echo "storage: empty log directory, no quorum answers: the first formation"
        tool kafka-storage.sh format -t "$CLUSTER_ID" -c /tmp/server.properties --initial-controllers "$INITIAL_CONTROLLERS"
      fi ;;
    *)
      echo "storage: empty log directory: formatting a broker"
      tool kafka-storage.sh format -t "$CLUSTER_ID" -c /tmp/server.properties --no-initial-controllers ;;
  esac
fi
case "$ROLES" in *controller*) ensure_voter & ;; esac
exec "$bin/kafka-server-start.sh" /tmp/server.properties
