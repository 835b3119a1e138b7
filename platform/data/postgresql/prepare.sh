#!/bin/sh
# Init container: prepares this instance's data directory before PostgreSQL starts. Which pod is
# the primary is decided in one place, the read-write Service `postgresql` (headless: its name
# resolves to the primary's pod IP). Every start (docs/data/postgresql.md):
#   - the primary, data directory empty: initdb (superuser password, the replicator role);
#   - the primary, data directory holding a standby: it was promoted by configuration alone
#     (standby.signal removed: it ends recovery and becomes the primary);
#   - a replica, data directory empty: clone the primary (pg_basebackup) through a replication
#     slot of its own, created first; a slot of that name left by an earlier clone of this pod (a
#     lost volume) is dropped before, so a re-clone succeeds any number of times and no orphaned
#     slot keeps WAL;
#   - a replica whose data directory was a primary (a failover happened): pg_rewind it onto the
#     new primary's timeline and make it a standby; if rewinding fails, clone again.
# PGDATA is a folder below the volume's mount (a fresh ext4 root holds lost+found).
set -eu
umask 077
printf '*:*:*:replicator:%s\n*:*:*:postgres:%s\n' "$REPLICATION_PASSWORD" "$POSTGRES_PASSWORD" > /tmp/pgpass
export PGPASSFILE=/tmp/pgpass PGCONNECT_TIMEOUT=5
slot="replica_${HOSTNAME##*-}"

primary_ip() { getent hosts postgresql | awk '{print $1; exit}'; }
until ip=$(primary_ip) && [ -n "$ip" ]; do echo "waiting for the Service postgresql to name a primary"; sleep 2; done

if [ "$ip" = "$POD_IP" ]; then
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "primary: empty data directory: initdb"
    printf '%s' "$POSTGRES_PASSWORD" > /tmp/pwfile
    initdb -D "$PGDATA" -U postgres --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256
    rm -f /tmp/pwfile
    pw=$(printf '%s' "$REPLICATION_PASSWORD" | sed "s/'/''/g")
    echo "CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD '$pw';" | postgres --single -D "$PGDATA" postgres >/dev/null
  elif [ -f "$PGDATA/standby.signal" ]; then
    echo "primary: the data directory is a standby: promoting it (standby.signal removed)"
    rm -f "$PGDATA/standby.signal"
  fi
  exit 0
fi

until pg_isready -q -h postgresql -U replicator; do echo "waiting for the primary to accept connections"; sleep 2; done
sql() { psql -h postgresql -U replicator -d postgres -v ON_ERROR_STOP=1 -tAc "$1"; }

clone() {
  case "$(sql "SELECT active FROM pg_replication_slots WHERE slot_name = '$slot'")" in
    t) echo "replica: slot $slot is in use by another connection: refusing to clone"; exit 1 ;;
    f) echo "replica: dropping the slot $slot an earlier clone left"; sql "SELECT pg_drop_replication_slot('$slot')" >/dev/null ;;
  esac
  rm -rf "$PGDATA"
  # The slot first, reserving WAL at once: created by pg_basebackup -C it would hold WAL only
  # from when the backup's stream starts, and another replica's clone (its checkpoint) could
  # recycle a segment this clone still needs in between.
  echo "replica: cloning the primary with the new slot $slot"
  sql "SELECT pg_create_physical_replication_slot('$slot', true)" >/dev/null
  pg_basebackup -h postgresql -U replicator -D "$PGDATA" -X stream -S "$slot"
  touch "$PGDATA/standby.signal"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  clone
elif [ ! -f "$PGDATA/standby.signal" ]; then
  echo "replica: the data directory was a primary: rewinding it onto the primary's timeline"
  if pg_rewind -D "$PGDATA" --source-server="host=postgresql user=postgres dbname=postgres"; then
    touch "$PGDATA/standby.signal"
  else
    echo "replica: pg_rewind failed: cloning again"
    clone
  fi
fi
# The slot on the current primary: after a failover the promoted primary has none.
sql "SELECT pg_create_physical_replication_slot('$slot', true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = '$slot')" >/dev/null
