#!/bin/sh
# Starts one Redis (Valkey) node, announcing the pod's current IP and its stable hostname
# (<pod>.<HEADLESS>.<namespace>..., the governing Service's per-pod name), which clients are
# redirected to.
#
# A Redis Cluster node remembers its peers by node id with the IP they last had (nodes.conf, on
# its volume), and the cluster bus only dials IPs. When nodes return on new IPs — one pod
# rescheduled, or every pod at once after a node-group replacement or a whole-cluster restart —
# a node would dial the old IPs forever. So the cluster heals itself (docs/data/redis.md):
#   1. before the start, each peer's IP in nodes.conf becomes what its announced hostname
#      resolves to now (peers whose name does not resolve yet keep their old IP);
#   2. after the start, every five seconds, a peer whose link is down is met again
#      (CLUSTER MEET) at the address its hostname resolves to; the handshake finds the known
#      node id and updates its address.
set -eu
umask 077
printf 'requirepass "%s"\nmasterauth "%s"\n' "$REDIS_PASSWORD" "$REDIS_PASSWORD" > /tmp/auth.conf
# The data directory is a folder below the volume's mount (a fresh ext4 root holds lost+found).
dir=$(sed -n 's/^dir //p' /config/redis.conf)
mkdir -p "$dir"
port=$(sed -n 's/^port //p' /config/redis.conf)
nodes_conf=$(sed -n 's/^cluster-config-file //p' /config/cluster.conf)
host="$HOSTNAME.$HEADLESS.$POD_NAMESPACE.svc.cluster.local"
cli() { valkey-cli -p "$port" -a "$REDIS_PASSWORD" --no-auth-warning "$@"; }
resolve() { getent hosts "$1" | awk '{print $1; exit}'; }
# The hostname a nodes.conf or CLUSTER NODES line announces: ip:port@cport,hostname[,aux=...].
hostname_of='{n = split($2, a, ","); if (n > 1) print a[2]}'

refresh_peer_ips() {
  f="$dir/$nodes_conf"
  [ -f "$f" ] || return 0
  for peer in $(awk '$1 != "vars" && $3 !~ /myself/' "$f" | awk "$hostname_of"); do
    ip=$(resolve "$peer") || true
    [ -n "$ip" ] || continue
    awk -v h="$peer" -v ip="$ip" '$1 != "vars" { n = split($2, a, ","); if (n > 1 && a[2] == h) sub(/^[^:]*/, ip, $2) } { print }' "$f" > "$f.new"
    mv "$f.new" "$f"
  done
}

meet_peers() {
  while sleep 5; do
    cli cluster nodes 2>/dev/null | awk '$3 !~ /myself/ && ($8 == "disconnected" || $3 ~ /fail/)' | awk "$hostname_of" |
      while read -r peer; do
        ip=$(resolve "$peer") || true
        [ -z "$ip" ] || cli cluster meet "$ip" "$port" "$((port + 10000))" >/dev/null 2>&1 || true
      done
  done
}

if [ -n "$nodes_conf" ]; then
  refresh_peer_ips
  meet_peers &
fi
exec valkey-server /config/redis.conf --cluster-announce-ip "$POD_IP" --cluster-announce-hostname "$host"
