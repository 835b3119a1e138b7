#!/bin/sh
# Starts one Kafka node: renders its server.properties from the pod's identity and the ConfigMap,
# formats its log directory when that holds no meta.properties, and runs Kafka. How a node with an
# empty log directory is formatted (docs/data/kafka.md, "The controller quorum"; KIP-853):
#   - a broker: without initial controllers (brokers are never voters);
#   - a controller, when a quorum answers: without initial controllers, so it gets a new directory
#     id; it starts as an observer, and once it has caught up it removes the voter its node id had
#     (a lost directory) and adds itself;
#   - controller 0 alone, when no quorum answers within QUORUM_PROBE_SECONDS: the very first
#     formation, --standalone (a quorum of one that the others then join). Every other controller
#     waits for a quorum as long as it takes and never forms one: a controller that lost its
#     volume can never come back as an initial voter.
set -eu
bin="${KAFKA_HOME:-/opt/kafka}/bin"
ordinal="${HOSTNAME##*-}"
node_id=$((NODE_ID_OFFSET + ordinal))
host="$HOSTNAME.$HEADLESS.$POD_NAMESPACE.svc.cluster.local"
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
# Beside the log directory on the volume: this controller formatted to join and is not a voter yet.
joining="$log_dir.joining"
# Short timeouts for the quorum tool: a quorum that does not answer in seconds is not there.
printf 'request.timeout.ms=5000\ndefault.api.timeout.ms=10000\n' > /tmp/admin.properties
# The tools run in the broker's container: a small heap of their own, not the broker's.
tool() { KAFKA_HEAP_OPTS="-Xmx128m" "$bin/$@"; }
quorum() { tool kafka-metadata-quorum.sh --bootstrap-controller "$QUORUM_BOOTSTRAP" "$@"; }
quorum_answers() { quorum --command-config /tmp/admin.properties describe --status >/dev/null 2>&1; }

# After a start as an observer: wait until this node has caught up with the metadata log, remove
# the voter that had this node id with another directory (the lost one), add this directory.
# Tried for ten minutes; the marker stays, so the next start tries again.
join_quorum() {
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
  if [ -n "$voter" ] && [ "$voter" != "$dir_id" ]; then
    echo "quorum: removing voter $node_id with the lost directory $voter"
    quorum --command-config /tmp/admin.properties remove-controller --controller-id "$node_id" --controller-directory-id "$voter"
  fi
  if [ "$voter" != "$dir_id" ]; then
    echo "quorum: adding voter $node_id with directory $dir_id"
    quorum --command-config /tmp/server.properties add-controller
  fi
  rm -f "$joining"
}

if [ ! -f "$log_dir/meta.properties" ]; then
  case "$ROLES" in
    *controller*)
      first=false
      if [ "$ordinal" = 0 ] && [ "$QUORUM_BOOTSTRAP" = "$host:9093" ]; then
        first=true   # a quorum of this node alone: nobody to ask
      elif [ "$ordinal" = 0 ]; then
        deadline=$(($(date +%s) + ${QUORUM_PROBE_SECONDS:-60}))
        until quorum_answers; do
          [ "$(date +%s)" -lt "$deadline" ] || { first=true; break; }
          sleep 2
        done
      else
        waited=0
        until quorum_answers; do
          [ $((waited % 30)) != 0 ] || echo "storage: empty log directory: waiting for the quorum to join (only controller 0 forms one) (${waited}s)"
          sleep 2; waited=$((waited + 2))
        done
      fi
      if $first; then
        echo "storage: empty log directory, no quorum answers: the first formation (standalone)"
        tool kafka-storage.sh format -t "$CLUSTER_ID" -c /tmp/server.properties --standalone
      else
        echo "storage: empty log directory, a quorum answers: formatting to join it (new directory id)"
        touch "$joining"
        tool kafka-storage.sh format -t "$CLUSTER_ID" -c /tmp/server.properties --no-initial-controllers
      fi ;;
    *)
      echo "storage: empty log directory: formatting a broker"
      tool kafka-storage.sh format -t "$CLUSTER_ID" -c /tmp/server.properties --no-initial-controllers ;;
  esac
fi
# Only a controller that is joining runs the quorum tool (a JVM) beside Kafka; every other start
# runs Kafka alone.
if [ -f "$joining" ]; then
  join_quorum &
fi
# The Prometheus JMX agent (METRICS_AGENT) goes into Kafka's JVM alone: the tools above and the
# quorum tool running beside Kafka would each try to serve metrics on the agent's port.
[ -z "${METRICS_AGENT:-}" ] || export KAFKA_OPTS="${KAFKA_OPTS:+$KAFKA_OPTS }$METRICS_AGENT"
exec "$bin/kafka-server-start.sh" /tmp/server.properties
