#!/bin/sh
# Every start announces the pod's current IP and its stable hostname: a node that comes back with
# a new IP tells its peers (they keep it by node ID in nodes.conf on their volumes) and rejoins.
set -eu
umask 077
printf 'requirepass "%s"\nmasterauth "%s"\n' "$REDIS_PASSWORD" "$REDIS_PASSWORD" > /tmp/auth.conf
exec valkey-server /config/redis.conf \
  --cluster-announce-ip "$POD_IP" \
  --cluster-announce-hostname "$HOSTNAME.redis-headless.cloudlab-data.svc.cluster.local"
