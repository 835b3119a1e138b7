#!/bin/sh
# Readiness: the primary when it answers; a replica only while it streams from the primary (a
# replica whose slot's WAL was lost, or cut off, must not serve stale reads on postgresql-read).
# Through the local socket (trusted in pg_hba.conf): TCP from 127.0.0.1 would need a password.
[ "$(psql -U postgres -tAc "SELECT CASE WHEN pg_is_in_recovery() THEN (SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming') ELSE 1 END")" = 1 ]
