{{/* Labels of every object: the part it belongs to (app.kubernetes.io/name, given as the
context) and the chart's common labels. */}}
{{- define "elasticsearch.labels" -}}
app.kubernetes.io/name: {{ . }}
app.kubernetes.io/component: search-engine
app.kubernetes.io/part-of: cloudlab
app.kubernetes.io/managed-by: argocd
{{- end -}}

{{/* The node sets of values `nodeSets`, by name, as a space-separated list. */}}
{{- define "elasticsearch.sets" -}}
{{- keys .Values.nodeSets | sortAlpha | join " " -}}
{{- end -}}

{{/* The one node set whose nodes are master-eligible (role `master`): the cluster's voting
quorum. None, or more than one, fails the render. */}}
{{- define "elasticsearch.masterSet" -}}
{{- $masters := list -}}
{{- range $name, $set := .Values.nodeSets -}}
{{- if has "master" $set.roles }}{{ $masters = append $masters $name }}{{ end -}}
{{- end -}}
{{- if ne (len $masters) 1 -}}
{{- fail (printf "elasticsearch: exactly one node set must have the role master (the voting quorum); these have it: %v" ($masters | sortAlpha)) -}}
{{- end -}}
{{- first $masters -}}
{{- end -}}

{{/* "true" when the cluster has more than one node: multi-node discovery, a bootstrap by
cluster.initial_master_nodes, and transport TLS (Elasticsearch requires it once security is on
and nodes talk to each other). One node: single-node discovery, no TLS. */}}
{{- define "elasticsearch.multiNode" -}}
{{- $n := 0 -}}
{{- range .Values.nodeSets }}{{ $n = add $n .replicas }}{{ end -}}
{{- gt (int $n) 1 -}}
{{- end -}}

{{/* "true" when a node set (context: dict root, set) serves the HTTP clients behind the
Service elasticsearch: the sets with the ingest role (coordinating nodes) or, where no set has
it, every set. */}}
{{- define "elasticsearch.httpClients" -}}
{{- $ingest := false -}}
{{- range .root.Values.nodeSets }}{{ if has "ingest" .roles }}{{ $ingest = true }}{{ end }}{{ end -}}
{{- or (not $ingest) (has "ingest" (index .root.Values.nodeSets .set).roles) -}}
{{- end -}}

{{/* A JVM's heap options: the same initial and maximum size (e.g. 1g). */}}
{{- define "elasticsearch.heap" -}}
-Xms{{ . }} -Xmx{{ . }}
{{- end -}}

{{/* Placement of a node set's pods (context: dict with set, spread): zone spread and hostname
anti-affinity, required (the master-eligible set, with quorumSpread: required) or preferred. */}}
{{- define "elasticsearch.placement" -}}
{{- $required := eq .spread "required" -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: {{ ternary "DoNotSchedule" "ScheduleAnyway" $required }}
    labelSelector:
      matchLabels: {app.kubernetes.io/name: elasticsearch, elasticsearch.cloudlab.io/node-set: {{ .set }}}
affinity:
  podAntiAffinity:
    {{- if $required }}
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels: {app.kubernetes.io/name: elasticsearch, elasticsearch.cloudlab.io/node-set: {{ .set }}}
    {{- else }}
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels: {app.kubernetes.io/name: elasticsearch, elasticsearch.cloudlab.io/node-set: {{ .set }}}
    {{- end }}
{{- end -}}
