package policytest

import (
	"encoding/xml"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// configData is a key of a rendered ConfigMap of the data tier, by the ConfigMap's name before
// the hash suffix kustomize's configMapGenerator appends.
func configData(c *render.Cluster, name, key string) (string, bool) {
	generated := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `(-[a-z0-9]{10})?$`)
	for _, cm := range objectsOf(c, "ConfigMap", dataNamespace) {
		if generated.MatchString(cm.GetName()) {
			v, ok, _ := unstructured.NestedString(cm.Object, "data", key)
			return v, ok
		}
	}
	return "", false
}

var propertyLine = func(key string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `[ =:]\s*(\S+)\s*$`)
}

func property(text, key string) string {
	if m := propertyLine(key).FindStringSubmatch(text); m != nil {
		return m[1]
	}
	return ""
}

// dataDirectories: where each store keeps its data, read from its rendered configuration, with the
// store's own default when the configuration does not say (the default is what runs):
//   - PostgreSQL: PGDATA (docker image postgres);
//   - Redis/Valkey: `dir` in redis.conf (default: the working directory, /data in the image);
//   - Kafka: log.dirs in server.properties;
//   - Elasticsearch: path.data in elasticsearch.yml (default /usr/share/elasticsearch/data);
//   - ClickHouse server: <path> in its config.d (default /var/lib/clickhouse/ in the image's config.xml);
//   - ClickHouse Keeper: log_storage_path and snapshot_storage_path in keeper.xml.
func dataDirectories(c *render.Cluster, store string, ctr corev1.Container) []string {
	env := map[string]string{}
	for _, e := range ctr.Env {
		env[e.Name] = e.Value
	}
	switch store {
	case "postgresql":
		return []string{env["PGDATA"]}
	case "redis":
		conf, _ := configData(c, "redis", "redis.conf")
		if d := property(conf, "dir"); d != "" {
			return []string{d}
		}
		return []string{"/data"}
	case "kafka":
		conf, _ := configData(c, "kafka", "server.properties")
		return strings.Split(property(conf, "log.dirs"), ",")
	case "elasticsearch":
		conf, _ := configData(c, "elasticsearch", "elasticsearch.yml")
		if d := property(conf, "path.data"); d != "" {
			return []string{d}
		}
		return []string{"/usr/share/elasticsearch/data"}
	case "clickhouse":
		conf, _ := configData(c, "clickhouse-server", "server.xml")
		var x struct {
			Path string `xml:"path"`
		}
		_ = xml.Unmarshal([]byte(conf), &x)
		if x.Path != "" {
			return []string{x.Path}
		}
		return []string{"/var/lib/clickhouse/"}
	case "clickhouse-keeper":
		conf, _ := configData(c, "clickhouse-keeper", "keeper.xml")
		var x struct {
			Log      string `xml:"keeper_server>log_storage_path"`
			Snapshot string `xml:"keeper_server>snapshot_storage_path"`
		}
		_ = xml.Unmarshal([]byte(conf), &x)
		return []string{x.Log, x.Snapshot}
	}
	return nil
}

// TestDataDirectoriesBelowVolumeRoot: no store keeps its data at the root of its volume. A fresh
// ext4 volume (EBS gp3 in staging and prod) holds lost+found at its root: Kafka takes it for a
// malformed partition directory and stops; initdb refuses a non-empty directory; a "volume
// empty?" test never sees an empty volume (Elasticsearch would never bootstrap). Every data
// directory is a folder below the mount of the StatefulSet's volume claim, in every environment.
func TestDataDirectoriesBelowVolumeRoot(t *testing.T) {
	for _, c := range repo(t).Clusters {
		var problems []string
		for _, sts := range objectsOf(c, "StatefulSet", dataNamespace) {
			var spec struct {
				Template             corev1.PodTemplateSpec         `json:"template"`
				VolumeClaimTemplates []corev1.PersistentVolumeClaim `json:"volumeClaimTemplates"`
			}
			raw, _, _ := unstructured.NestedMap(sts.Object, "spec")
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &spec))
			claims := map[string]bool{}
			for _, vct := range spec.VolumeClaimTemplates {
				claims[vct.Name] = true
			}
			store := spec.Template.Labels["app.kubernetes.io/name"]
			ctr := spec.Template.Spec.Containers[0]
			var mounts []string
			for _, m := range ctr.VolumeMounts {
				if claims[m.Name] && m.SubPath == "" {
					mounts = append(mounts, path.Clean(m.MountPath))
				}
			}
			dirs := dataDirectories(c, store, ctr)
			if !assert.NotEmpty(t, dirs, "%s: StatefulSet %s: the test does not know where %s keeps its data: teach dataDirectories", c.Name, sts.GetName(), store) {
				continue
			}
			for _, d := range dirs {
				d = path.Clean(d)
				below := false
				for _, m := range mounts {
					if d == m {
						problems = append(problems, fmt.Sprintf("StatefulSet %s: %s keeps its data at %s, the root of its volume: use a folder below it", sts.GetName(), store, d))
						below = true
					} else if strings.HasPrefix(d, m+"/") {
						below = true
					}
				}
				if !below {
					problems = append(problems, fmt.Sprintf("StatefulSet %s: %s keeps its data at %s, on no volume (mounts %v)", sts.GetName(), store, d, mounts))
				}
			}
		}
		assert.Empty(t, problems, "%s: data directories:\n%s", c.Name, strings.Join(problems, "\n"))
	}
}

// TestReplicationSlotsBounded: PostgreSQL replicas use replication slots, and a slot keeps WAL on
// the primary for as long as its replica is away — without a bound, until the primary's disk is
// full (an orphaned slot of a lost replica does it too). max_slot_wal_keep_size bounds it
// (PostgreSQL manual, "Replication" server settings); here at most a quarter of the data volume,
// in every environment.
func TestReplicationSlotsBounded(t *testing.T) {
	for _, c := range repo(t).Clusters {
		sts := statefulSets(c)["postgresql"]
		require.NotNil(t, sts, "%s: no StatefulSet postgresql", c.Name)
		keep, ok := configData(c, "postgresql", "max-slot-wal-keep-size")
		if !assert.True(t, ok, "%s: ConfigMap postgresql has no max-slot-wal-keep-size", c.Name) {
			continue
		}
		script, _ := configData(c, "postgresql", "start.sh")
		assert.Contains(t, script, `max_slot_wal_keep_size="$MAX_SLOT_WAL_KEEP_SIZE"`, "%s: start.sh must pass the bound to postgres", c.Name)
		bytes, err := postgresSize(keep)
		if !assert.NoError(t, err, "%s: max-slot-wal-keep-size %q", c.Name, keep) {
			continue
		}
		claims, _, _ := unstructured.NestedSlice(sts.Object, "spec", "volumeClaimTemplates")
		require.NotEmpty(t, claims, "%s: StatefulSet postgresql has no volume claim", c.Name)
		storage, _, _ := unstructured.NestedString(claims[0].(map[string]any), "spec", "resources", "requests", "storage")
		volume := resource.MustParse(storage)
		assert.True(t, bytes > 0 && bytes*4 <= volume.Value(), "%s: max_slot_wal_keep_size %s must be set and at most a quarter of the %s data volume", c.Name, keep, storage)
	}
}

// postgresSize reads a PostgreSQL memory/size setting (units kB, MB, GB, TB, powers of 1024).
func postgresSize(s string) (int64, error) {
	m := regexp.MustCompile(`^(-?\d+)\s*(kB|MB|GB|TB)?$`).FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("not a PostgreSQL size")
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, err
	}
	unit := map[string]int64{"": 1 << 20, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[m[2]]
	return n * unit, nil
}
