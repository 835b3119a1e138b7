{{/* Labels of every object: the part it belongs to (app.kubernetes.io/name, given as the
context) and the chart's common labels. */}}
{{- define "kafka-ui.labels" -}}
app.kubernetes.io/name: {{ . }}
app.kubernetes.io/component: event-streaming
app.kubernetes.io/part-of: cloudlab
app.kubernetes.io/managed-by: argocd
{{- end -}}

{{/* A JVM's heap options: the same initial and maximum size (values `heap`, e.g. 256m). */}}
{{- define "kafka-ui.heap" -}}
-Xms{{ . }} -Xmx{{ . }}
{{- end -}}
