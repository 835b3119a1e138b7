#!/bin/sh
# Forms the Redis Cluster once; safe to run again at every sync (Argo CD PostSync hook):
# - cluster already ok            -> nothing to do;
# - no slot assigned anywhere     -> create it from all nodes;
# - slots assigned, state not ok  -> the nodes are healing (start.sh meets peers that returned on
#   new IPs): wait up to HEAL_WAIT_SECONDS for ok, then stop and tell a human
#   (docs/data/redis.md, "Repair").
set -eu
[ "$(cat /config/cluster.conf | grep -c '^cluster-enabled yes')" = "1" ] || { echo "single node: no cluster"; exit 0; }
N=$(cat /config/nodes); R=$(cat /config/replicas-per-master)
cli() { valkey-cli -a "$REDIS_PASSWORD" --no-auth-warning "$@"; }
addrs=""
i=0
while [ "$i" -lt "$N" ]; do
  host="redis-$i.$HEADLESS.$POD_NAMESPACE.svc.cluster.local"
  until cli -h "$host" ping 2>/dev/null | grep -q PONG; do echo "waiting for $host"; sleep 3; done
  addrs="$addrs $(getent hosts "$host" | awk '{print $1}'):6379"
  i=$((i + 1))
done
info=$(cli -h "redis-0.$HEADLESS.$POD_NAMESPACE.svc.cluster.local" cluster info | tr -d '\r')
if echo "$info" | grep -q '^cluster_state:ok'; then echo "cluster already formed"; exit 0; fi
if ! echo "$info" | grep -q '^cluster_slots_assigned:0$'; then
  waited=0
  until cli -h "redis-0.$HEADLESS.$POD_NAMESPACE.svc.cluster.local" cluster info | grep -q '^cluster_state:ok'; do
    if [ "$waited" -ge "${HEAL_WAIT_SECONDS:-300}" ]; then
      echo "slots are assigned but the cluster has not healed in ${waited}s: repair by hand (docs/data/redis.md)"; exit 1
    fi
    echo "slots are assigned, cluster not ok yet: waiting for the nodes to heal (${waited}s)"
    sleep 5; waited=$((waited + 5))
  done
  echo "cluster healed"; exit 0
fi
cli --cluster create $addrs --cluster-replicas "$R" --cluster-yes
