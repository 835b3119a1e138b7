#!/bin/sh
# Runs PostgreSQL on the data directory prepare.sh made ready. A standby streams from whatever the
# read-write Service `postgresql` names, through its own slot (prepare.sh creates it on the
# current primary at every start; after a failover the replicas are restarted once so that the
# promoted primary gets their slots: docs/data/postgresql.md, "Failover").
set -eu
umask 077
printf '*:*:*:replicator:%s\n' "$REPLICATION_PASSWORD" > /tmp/pgpass
# Slots keep WAL for a replica that is away, up to max_slot_wal_keep_size (per environment, sized
# against the volume: docs/data/postgresql.md); a replica away longer loses its slot's WAL and
# re-clones. (pg_rewind relies on the data checksums initdb turned on: prepare.sh.)
exec postgres -D "$PGDATA" \
  -c hba_file=/config/pg_hba.conf \
  -c listen_addresses='*' \
  -c wal_level=replica \
  -c hot_standby=on \
  -c max_wal_senders=10 \
  -c max_replication_slots=10 \
  -c max_slot_wal_keep_size="$MAX_SLOT_WAL_KEEP_SIZE" \
  -c shared_buffers=128MB \
  -c primary_conninfo="host=postgresql user=replicator passfile=/tmp/pgpass application_name=$HOSTNAME" \
  -c primary_slot_name="replica_${HOSTNAME##*-}"
