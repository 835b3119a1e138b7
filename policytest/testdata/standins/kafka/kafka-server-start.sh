#!/bin/sh
# Stub: records the call (with KAFKA_OPTS, where the JMX agent goes) and the rendered server.properties, then runs until told to stop (the
# start script's background work goes on meanwhile) or STUB_RUN_SECONDS pass.
echo "kafka-server-start.sh $*${KAFKA_OPTS:+ KAFKA_OPTS=$KAFKA_OPTS}" >> "$STUB_LOG"
cp "$1" "$STUB_DIR/server.properties.$HOSTNAME"
i=0
while [ "$i" -lt "${STUB_RUN_SECONDS:-0}" ] && [ ! -f "$STUB_DIR/stop" ]; do sleep 1; i=$((i + 1)); done
