#!/bin/sh
# Renders this node's server.properties and, on the very first start (empty volume), formats its
# storage: controllers with the initial controller set (dynamic quorum), brokers without.
set -eu
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
if [ ! -f /var/lib/kafka/data/meta.properties ]; then
  case "$ROLES" in
    *controller*) /opt/kafka/bin/kafka-storage.sh format -t "$CLUSTER_ID" -c /tmp/server.properties --initial-controllers "$INITIAL_CONTROLLERS" ;;
    *)            /opt/kafka/bin/kafka-storage.sh format -t "$CLUSTER_ID" -c /tmp/server.properties --no-initial-controllers ;;
  esac
fi
exec /opt/kafka/bin/kafka-server-start.sh /tmp/server.properties
