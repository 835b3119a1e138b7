{{/* Labels of every object: the part it belongs to (app.kubernetes.io/name, given as the
context) and the chart's common labels. */}}
{{- define "postgresql.labels" -}}
app.kubernetes.io/name: {{ . }}
app.kubernetes.io/component: database
app.kubernetes.io/part-of: cloudlab
app.kubernetes.io/managed-by: argocd
{{- end -}}
