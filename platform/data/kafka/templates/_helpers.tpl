{{/* Labels of every object: the part it belongs to (app.kubernetes.io/name, given as the
context) and the chart's common labels. */}}
{{- define "kafka.labels" -}}
app.kubernetes.io/name: {{ . }}
app.kubernetes.io/component: event-streaming
app.kubernetes.io/part-of: cloudlab
app.kubernetes.io/managed-by: argocd
{{- end -}}

{{/* The node sets of values `nodeSets`, in a fixed order, as a space-separated list: `node`
(combined broker and controller nodes) alone, or `controller` and `broker` (dedicated). Any other
shape fails the render. */}}
{{- define "kafka.sets" -}}
{{- $sets := keys .Values.nodeSets | sortAlpha -}}
{{- if eq (join " " $sets) "node" -}}node
{{- else if eq (join " " $sets) "broker controller" -}}controller broker
{{- else -}}
{{- fail (printf "kafka: nodeSets has %v: use `node` (combined brokers and controllers) alone, or `controller` and `broker`" $sets) -}}
{{- end -}}
{{- end -}}

{{/* process.roles of a node set (given as the context). */}}
{{- define "kafka.roles" -}}
{{- get (dict "node" "broker,controller" "controller" "controller" "broker" "broker") . -}}
{{- end -}}

{{/* The node set whose nodes are the controller quorum: `node` or `controller`. */}}
{{- define "kafka.quorumSet" -}}
{{- if hasKey .Values.nodeSets "node" }}node{{ else }}controller{{ end -}}
{{- end -}}

{{/* A controller's address: pod <set>-<ordinal> under the headless Service kafka-headless, on
the controller listener. Context: list of set name, ordinal, namespace. */}}
{{- define "kafka.controllerAddress" -}}
{{- printf "kafka-%s-%d.%s.%s.svc.cluster.local:9093" (index . 0) (index . 1) (include "kafka.headless" .) (index . 2) -}}
{{- end -}}

{{/* controller.quorum.bootstrap.servers: every controller, derived from the quorum set's
replicas. */}}
{{- define "kafka.quorumBootstrap" -}}
{{- $set := include "kafka.quorumSet" . -}}
{{- $out := list -}}
{{- range $i := until (int (index .Values.nodeSets $set).replicas) -}}
{{- $out = append $out (include "kafka.controllerAddress" (list $set $i $.Release.Namespace)) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}


{{/* A JVM's heap options: the same initial and maximum size (e.g. 1g). */}}
{{- define "kafka.heap" -}}
-Xms{{ . }} -Xmx{{ . }}
{{- end -}}

{{/* Placement of a node set's pods (context: dict with set, spread): zone spread and hostname
anti-affinity, required (the quorum, with quorumSpread: required) or preferred. */}}
{{- define "kafka.placement" -}}
{{- $required := eq .spread "required" -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: {{ ternary "DoNotSchedule" "ScheduleAnyway" $required }}
    labelSelector:
      matchLabels: {app.kubernetes.io/name: kafka, kafka.cloudlab.io/node-set: {{ .set }}}
affinity:
  podAntiAffinity:
    {{- if $required }}
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels: {app.kubernetes.io/name: kafka, kafka.cloudlab.io/node-set: {{ .set }}}
    {{- else }}
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels: {app.kubernetes.io/name: kafka, kafka.cloudlab.io/node-set: {{ .set }}}
    {{- end }}
{{- end -}}

{{/* The headless Service that governs every node set's pod names (<pod>.<it>...): what the nodes
advertise to clients and to the quorum. */}}
{{- define "kafka.headless" -}}kafka-headless{{- end -}}
