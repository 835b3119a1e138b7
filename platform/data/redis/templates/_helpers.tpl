{{/* Labels of every object: the part it belongs to (app.kubernetes.io/name, given as the
context) and the chart's common labels. */}}
{{- define "redis.labels" -}}
app.kubernetes.io/name: {{ . }}
app.kubernetes.io/component: cache
app.kubernetes.io/part-of: cloudlab
app.kubernetes.io/managed-by: argocd
{{- end -}}

{{/* The number of nodes, from the values `masters` and `replicasPerMaster`: masters x (1 +
replicasPerMaster). One master is a single node without Redis Cluster; a Redis Cluster needs at
least three masters (a majority of masters must agree to fail one over). */}}
{{- define "redis.nodes" -}}
{{- $m := int .Values.masters -}}
{{- $r := int .Values.replicasPerMaster -}}
{{- if and (eq $m 1) (gt $r 0) -}}
{{- fail (printf "redis: masters: 1 is a single node without Redis Cluster, which has no replicas (replicasPerMaster: %d): use masters: 3 or more for replicas" $r) -}}
{{- end -}}
{{- if eq $m 2 -}}
{{- fail "redis: masters: 2 cannot form a Redis Cluster (a failover needs a majority of masters): use 1 (a single node) or 3 or more" -}}
{{- end -}}
{{- mul $m (add1 $r) -}}
{{- end -}}

{{/* The headless Service that governs the nodes' names (redis-N.<it>...): the hostnames the nodes
announce and clients are redirected to. */}}
{{- define "redis.headless" -}}redis-headless{{- end -}}
