{{/* The topology files, derived from values server.shards, server.replicas and keeper.replicas:
every server's cluster.xml (the cluster `cloudlab`: each shard and its replicas by pod name;
the Keeper ensemble the servers use) and every Keeper's raft.xml (the members: server id =
ordinal + 1, as the Keeper start command sets it). */}}
{{- define "clickhouse.clusterXML" -}}
{{- $namespace := .Release.Namespace -}}
<!-- Topology: {{ .Values.server.shards }} shard(s) x {{ .Values.server.replicas }} replica(s), {{ .Values.keeper.replicas }} keeper(s). -->
<clickhouse>
    <remote_servers>
        <cloudlab>
{{- range $shard := until (int .Values.server.shards) }}
            <shard>
                <internal_replication>true</internal_replication>
{{- range $replica := until (int $.Values.server.replicas) }}
                <replica><host>clickhouse-shard-{{ $shard }}-{{ $replica }}.clickhouse-shard-{{ $shard }}.{{ $namespace }}.svc.cluster.local</host><port>9000</port><user>default</user><password from_env="CLICKHOUSE_PASSWORD"/></replica>
{{- end }}
            </shard>
{{- end }}
        </cloudlab>
    </remote_servers>
    <zookeeper>
{{- range $i := until (int .Values.keeper.replicas) }}
        <node><host>{{ include "clickhouse.keeperHost" (list $i $namespace) }}</host><port>9181</port></node>
{{- end }}
    </zookeeper>
</clickhouse>
{{ end -}}

{{- define "clickhouse.raftXML" -}}
{{- $namespace := .Release.Namespace -}}
<!-- Keeper members: {{ .Values.keeper.replicas }}. Change membership one server at a time (docs/data/clickhouse.md). -->
<clickhouse>
    <keeper_server>
        <raft_configuration>
{{- range $i := until (int .Values.keeper.replicas) }}
            <server><id>{{ add1 $i }}</id><hostname>{{ include "clickhouse.keeperHost" (list $i $namespace) }}</hostname><port>9234</port></server>
{{- end }}
        </raft_configuration>
    </keeper_server>
</clickhouse>
{{ end -}}
