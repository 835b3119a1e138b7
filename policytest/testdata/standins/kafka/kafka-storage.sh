#!/bin/sh
# Stub: records the call and, for `format`, writes meta.properties into the log directory of the
# given config, as Kafka does (a directory id is random unless --initial-controllers names it).
echo "kafka-storage.sh $*${KAFKA_OPTS:+ KAFKA_OPTS=$KAFKA_OPTS}" >> "$STUB_LOG"
[ "${1:-}" = format ] || exit 0
cfg=""; prev=""
for a in "$@"; do [ "$prev" = -c ] && cfg=$a; prev=$a; done
dir=$(sed -n 's/^log\.dirs=//p' "$cfg")
mkdir -p "$dir"
node=$(sed -n 's/^node\.id=//p' "$cfg")
printf 'node.id=%s\ndirectory.id=%s\nversion=1\n' "$node" "${STUB_NEW_DIRECTORY_ID:-newdir-$node}" > "$dir/meta.properties"
