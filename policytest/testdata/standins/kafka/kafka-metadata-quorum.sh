#!/bin/sh
# Stub: records the call. `describe` answers from $STUB_DIR/status and $STUB_DIR/replication (the
# output formats of Kafka's MetadataQuorumCommand); with no such file no quorum answers (exit 1).
echo "kafka-metadata-quorum.sh $*${KAFKA_OPTS:+ KAFKA_OPTS=$KAFKA_OPTS}" >> "$STUB_LOG"
for a in "$@"; do
  case "$a" in
    --status) [ -f "$STUB_DIR/status" ] || exit 1; cat "$STUB_DIR/status"; exit 0 ;;
    --replication) [ -f "$STUB_DIR/replication" ] || exit 1; cat "$STUB_DIR/replication"; exit 0 ;;
    add-controller|remove-controller) exit 0 ;;
  esac
done
