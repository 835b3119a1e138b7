{{/* Labels of every object: the part it belongs to (app.kubernetes.io/name, given as the
context: clickhouse for the servers, clickhouse-keeper) and the chart's common labels. */}}
{{- define "clickhouse.labels" -}}
app.kubernetes.io/name: {{ . }}
app.kubernetes.io/component: analytics-db
app.kubernetes.io/part-of: cloudlab
app.kubernetes.io/managed-by: argocd
{{- end -}}

{{/* A Keeper's address (context: list of ordinal, namespace) on the headless Service. */}}
{{- define "clickhouse.keeperHost" -}}
{{- printf "clickhouse-keeper-%d.clickhouse-keeper-headless.%s.svc.cluster.local" (index . 0) (index . 1) -}}
{{- end -}}

{{/* Placement of a set's pods (context: dict with selector, a map of labels, and spread): zone
spread and hostname anti-affinity, required (Keeper, with quorumSpread: required) or preferred. */}}
{{- define "clickhouse.placement" -}}
{{- $required := eq .spread "required" -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: {{ ternary "DoNotSchedule" "ScheduleAnyway" $required }}
    labelSelector:
      matchLabels: {{ toJson .selector }}
affinity:
  podAntiAffinity:
    {{- if $required }}
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels: {{ toJson .selector }}
    {{- else }}
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels: {{ toJson .selector }}
    {{- end }}
{{- end -}}
