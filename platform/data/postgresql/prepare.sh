#!/bin/sh
# Init container: prepares this instance's data directory before PostgreSQL starts. Which pod is
# the primary is one value, the chart's `primary` (PRIMARY here; it also selects the read-write
# Service `postgresql`). Every start (docs/data/postgresql.md):
#   - the primary, data directory empty: initdb (superuser password, the replicator role) — unless
#     another instance holds a database (then the primary's volume was lost: fail over instead);
#   - the primary, data directory holding a standby: promoted by configuration (standby.signal
#     removed: it ends recovery and becomes the primary);
#   - the primary, whenever another instance already is a primary (a failover happened and
#     `primary` was not changed yet): refuse to start, so there are never two primaries;
#   - a replica, data directory empty, or its slot's WAL lost (away longer than
#     max_slot_wal_keep_size): clone the primary (pg_basebackup) through a replication slot of
#     its own, created first; a slot of that name an earlier clone of this pod left is dropped
#     before, so a re-clone succeeds any number of times and no orphaned slot keeps WAL;
#   - a replica whose data directory was a primary (a failover happened): pg_rewind it onto the
#     new primary's timeline and make it a standby; if rewinding fails, clone again.
# PGDATA is a folder below the volume's mount (a fresh ext4 root holds lost+found).
set -eu
umask 077
printf '*:*:*:replicator:%s\n*:*:*:postgres:%s\n' "$REPLICATION_PASSWORD" "$POSTGRES_PASSWORD" > /tmp/pgpass
export PGPASSFILE=/tmp/pgpass PGCONNECT_TIMEOUT=5
slot="replica_${HOSTNAME##*-}"

# ask <host> <sql>: one value from another instance, empty when it does not answer.
ask() { psql -h "$1" -U replicator -d postgres -tAc "$2" 2>/dev/null || true; }

# The other instances: their per-pod names under the headless Service.
peers() {
  i=0
  while [ "$i" -lt "$INSTANCES" ]; do
    [ "postgresql-$i" = "$HOSTNAME" ] || echo "postgresql-$i.postgresql-headless"
    i=$((i + 1))
  done
}

if [ "$HOSTNAME" = "$PRIMARY" ]; then
  for peer in $(peers); do
    case "$(ask "$peer" "SELECT pg_is_in_recovery()")" in
      f) echo "refusing to start as the primary: $peer is a primary (a failover happened?). If it is" \
              "the primary now, set primary: ${peer%%.*} in clusters/<env>/data/postgresql/values.yaml."
         exit 1 ;;
      t) if [ ! -s "$PGDATA/PG_VERSION" ]; then
           echo "refusing to initialise an empty primary: $peer holds a database. The primary's volume" \
                "is lost: fail over to a replica (docs/data/postgresql.md, Failover)."
           exit 1
         fi ;;
    esac
  done
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "primary: empty data directory: initdb"
    printf '%s' "$POSTGRES_PASSWORD" > /tmp/pwfile
    # Data checksums: corruption is detected, and pg_rewind can turn this primary into a replica
    # after a failover (it needs checksums or wal_log_hints recorded in the data directory; a
    # setting given only on the command line is lost in its crash-recovery run).
    initdb -D "$PGDATA" -U postgres --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256 --data-checksums
    rm -f /tmp/pwfile
    pw=$(printf '%s' "$REPLICATION_PASSWORD" | sed "s/'/''/g")
    echo "CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD '$pw';" | postgres --single -D "$PGDATA" postgres >/dev/null
  elif [ -f "$PGDATA/standby.signal" ]; then
    echo "primary: the data directory is a standby: promoting it (standby.signal removed)"
    rm -f "$PGDATA/standby.signal"
  fi
  exit 0
fi

until pg_isready -q -h postgresql -U replicator -d postgres; do echo "waiting for the primary ($PRIMARY) to accept connections"; sleep 2; done
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
  # After an unclean stop pg_rewind first finishes crash recovery in single-user mode, which
  # refuses a postmaster.pid naming a live process — here PID 1 is this script. Nothing else can
  # run on this volume while the init container does (ReadWriteOnce, one pod).
  rm -f "$PGDATA/postmaster.pid"
  # A primary promoted moments ago records its new timeline in its control file only at its
  # next checkpoint; pg_rewind reads the timeline there (PostgreSQL manual, pg_rewind: "execute a
  # CHECKPOINT after promotion"), else it finds "no rewind required" for a diverged copy.
  psql -h postgresql -U postgres -d postgres -qc CHECKPOINT
  if pg_rewind -D "$PGDATA" --source-server="host=postgresql user=postgres dbname=postgres"; then
    touch "$PGDATA/standby.signal"
  else
    echo "replica: pg_rewind failed: cloning again"
    clone
  fi
elif [ "$(sql "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '$slot'")" = lost ]; then
  echo "replica: the primary no longer keeps the WAL of slot $slot (away longer than max_slot_wal_keep_size): cloning again"
  clone
fi
# The slot on the current primary: after a failover the promoted primary has none.
sql "SELECT pg_create_physical_replication_slot('$slot', true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = '$slot')" >/dev/null
