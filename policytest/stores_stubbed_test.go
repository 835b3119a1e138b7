package policytest

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cloudlab/platform/policytest/internal/podrun"
	"github.com/cloudlab/platform/policytest/internal/render"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Kafka, Elasticsearch and ClickHouse cannot run on this machine (no Debian package, no registry):
// their start commands run as rendered against stubs (testdata/standins) that record what the
// scripts asked for, and these tests assert the decisions.

// stubRun runs one container of a rendered workload's pod in a fresh sandbox world whose image is
// stood in by the stubs of testdata/standins/<stubs>. prepare may set up the stub's answers
// (files in stubDir) and the pod's volumes before the start. It returns the stub log.
type stubRun struct {
	t         *testing.T
	cluster   *render.Cluster
	kind      string // StatefulSet, ...
	workload  string
	ordinal   int
	container string
	stubs     string // folder of testdata/standins
	bindAt    string // where the stubs appear in the sandbox ("" = on PATH)
	env       map[string]string
	prepare   func(stubDir string, pod *podrun.Pod)
}

func (r stubRun) setup() (pod *podrun.Pod, stubDir string) {
	t := r.t
	objs := dataObjects(r.cluster)
	w := workload(t, objs, r.kind, r.workload)
	tmpl, err := podrun.TemplateOf(w)
	require.NoError(t, err)
	dir := storesWorkDir(t)
	stubDir = filepath.Join(dir, "stub")
	require.NoError(t, os.MkdirAll(stubDir, 0o777))
	img := podrun.Image{Env: map[string]string{"STUB_LOG": "/stub/log", "STUB_DIR": "/stub"}, Writable: map[string]string{"/stub": stubDir}}
	if r.bindAt == "" {
		img.Path = []string{standins(t, r.stubs)}
	} else {
		img.Bind = map[string]string{r.bindAt: standins(t, r.stubs)}
	}
	images := map[string]podrun.Image{}
	for _, c := range append(tmpl.Spec.InitContainers, tmpl.Spec.Containers...) {
		images[c.Image] = img
	}
	secrets := map[string]map[string]string{}
	for _, c := range append(tmpl.Spec.InitContainers, tmpl.Spec.Containers...) {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				if secrets[e.ValueFrom.SecretKeyRef.Name] == nil {
					secrets[e.ValueFrom.SecretKeyRef.Name] = map[string]string{}
				}
				secrets[e.ValueFrom.SecretKeyRef.Name][e.ValueFrom.SecretKeyRef.Key] = "secret"
			}
		}
	}
	for _, v := range tmpl.Spec.Volumes {
		if v.Secret != nil && secrets[v.Secret.SecretName] == nil {
			// e.g. a certificate cert-manager would issue: files with placeholder content.
			secrets[v.Secret.SecretName] = map[string]string{"tls.crt": "stub", "tls.key": "stub", "ca.crt": "stub"}
		}
	}
	cl, err := podrun.NewCluster(dir, dataNamespace, objs, secrets, images)
	require.NoError(t, err)
	pod = cl.NewPod(fmt.Sprintf("%s-%d", r.workload, r.ordinal), loopbackBlock(t)+"10", tmpl)
	if r.prepare != nil {
		r.prepare(stubDir, pod)
	}
	return pod, stubDir
}

// run runs the container to its end and returns the stub log.
func (r stubRun) run() (log string, pod *podrun.Pod, stubDir string) {
	pod, stubDir = r.setup()
	out, err := pod.Run(context.Background(), r.container, r.env, time.Minute)
	require.NoError(r.t, err, out)
	data, _ := os.ReadFile(filepath.Join(stubDir, "log"))
	return string(data), pod, stubDir
}

// waits starts the container, lets it run for d, stops it, and returns the stub log; it fails the
// test if the container ended by itself within d.
func (r stubRun) waits(d time.Duration) string {
	pod, stubDir := r.setup()
	pr, err := pod.Start(context.Background(), r.container, r.env)
	require.NoError(r.t, err)
	ended, _ := pr.Wait(d)
	pr.Stop(time.Second)
	out, _ := os.ReadFile(pr.Log)
	require.False(r.t, ended, "%s-%d: ended within %s instead of waiting:\n%s", r.workload, r.ordinal, d, out)
	data, _ := os.ReadFile(filepath.Join(stubDir, "log"))
	return string(data)
}

// kafkaStatus is `kafka-metadata-quorum.sh describe --status` as Kafka 4.x prints it, with the
// given voters (id -> directory id).
func kafkaStatus(voters map[int]string) string {
	ids := make([]int, 0, len(voters))
	for id := range voters {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	var v []string
	for _, id := range ids {
		v = append(v, fmt.Sprintf(`{"id": %d, "directoryId": "%s", "endpoints": ["CONTROLLER://c-%d:9093"]}`, id, voters[id], id))
	}
	return "ClusterId:              AocKlrlRTHCpCEWd5Gb9PQ\nLeaderId:               1\nLeaderEpoch:            3\nHighWatermark:          120\nMaxFollowerLag:         0\nMaxFollowerLagTimeMs:   0\n" +
		"CurrentVoters:          [" + strings.Join(v, ", ") + "]\nCurrentObservers:       []\n"
}

// TestKafkaStartDecisions: Kafka's start.sh, as rendered for every node set of every environment,
// run against stubs:
//   - the log directory (and the meta.properties test) is a folder below the volume's root;
//   - each node advertises <pod>.<its governing headless Service> (what clients are handed);
//   - a node with an empty log directory: a broker formats without initial controllers;
//     controller 0, when no quorum answers, forms the first quorum alone (--standalone); any other
//     controller never forms one — it waits for a quorum, then formats without initial
//     controllers (a new directory id) and, once caught up, removes the voter its node id had
//     with a lost directory (if any) and adds itself (KIP-853);
//   - a controller with its log directory intact runs no quorum tool at all.
func TestKafkaStartDecisions(t *testing.T) {
	t.Parallel()
	storeScriptsNeed(t)
	for _, c := range repo(t).Clusters {
		for _, sts := range objectsOf(c, "StatefulSet", dataNamespace) {
			if sts.GetLabels()["app.kubernetes.io/name"] != "kafka" {
				continue
			}
			t.Run(c.Name+"/"+sts.GetName(), func(t *testing.T) {
				t.Parallel()
				kafkaStartDecisions(t, c, sts)
			})
		}
	}
	t.Cleanup(func() {
		if !t.Failed() {
			fmt.Println("store scripts: kafka start.sh decisions (log dir below the volume root, advertised names, first formation by controller 0 alone, every other controller joins with add-controller): every node set of dev, staging and prod")
		}
	})
}

func kafkaStartDecisions(t *testing.T, c *render.Cluster, sts *unstructured.Unstructured) {
	tmpl, err := podrun.TemplateOf(sts)
	require.NoError(t, err)
	env := map[string]string{}
	for _, e := range tmpl.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	controller := strings.Contains(env["ROLES"], "controller")
	nodeID := func(ordinal int) int { return atoi(t, env["NODE_ID_OFFSET"]) + ordinal }
	governing, _, _ := unstructured.NestedString(sts.Object, "spec", "serviceName")
	name := fmt.Sprintf("%s/%s", c.Name, sts.GetName())
	run := stubRun{t: t, cluster: c, kind: "StatefulSet", workload: sts.GetName(), container: "kafka",
		stubs: "kafka", bindAt: "/opt/kafka/bin", env: map[string]string{"QUORUM_PROBE_SECONDS": "0", "STUB_RUN_SECONDS": "1"}}
	formatsAsVoter := regexp.MustCompile(`kafka-storage.sh format .*--(standalone|initial-controllers)`)
	answers := func(voters map[int]string, self int) func(string, *podrun.Pod) {
		return func(stubDir string, _ *podrun.Pod) {
			require.NoError(t, os.WriteFile(filepath.Join(stubDir, "status"), []byte(kafkaStatus(voters)), 0o644))
			repl := fmt.Sprintf("NodeId  DirectoryId  LogEndOffset  Lag  LastFetchTimestamp  LastCaughtUpTimestamp  Status\n0 dir-0 120 0 1 1 Leader\n%d newdir-%d 120 0 1 1 Observer\n", self, self)
			require.NoError(t, os.WriteFile(filepath.Join(stubDir, "replication"), []byte(repl), 0o644))
		}
	}

	// Ordinal 0 on a fresh volume (lost+found in it), no quorum answers.
	log, pod, stubDir := run.run()
	vol, _ := pod.Claim("data")
	props, err := os.ReadFile(filepath.Join(stubDir, "server.properties."+pod.Name))
	require.NoError(t, err, "%s: kafka-server-start.sh was not reached:\n%s", name, log)
	jmxAgentOnlyInKafka(t, name, log)
	logDir := property(string(props), "log.dirs")
	assert.True(t, strings.HasPrefix(logDir, "/var/lib/kafka/data/"), "%s: log.dirs %s is below the volume's mount", name, logDir)
	_, err = os.Stat(filepath.Join(vol, strings.TrimPrefix(logDir, "/var/lib/kafka/data/"), "meta.properties"))
	assert.NoError(t, err, "%s: formatted into log.dirs below the volume root", name)
	host := fmt.Sprintf("%s.%s.%s.svc.cluster.local", pod.Name, governing, dataNamespace)
	assert.Contains(t, property(string(props), "advertised.listeners"), "://"+host+":", "%s: advertises its per-pod name under its governing Service", name)
	if controller {
		assert.Contains(t, log, "--standalone", "%s: controller 0 forms the first quorum alone", name)
	} else {
		assert.Contains(t, log, "--no-initial-controllers", "%s: a broker formats without initial controllers", name)
		assert.NotRegexp(t, formatsAsVoter, log, "%s: a broker is never a voter", name)
		return
	}
	if replicas(sts) < 3 {
		return // a quorum of one has nobody to join: it forms anew (docs/data/kafka.md)
	}

	// Controller 1 on a fresh volume while no quorum answers: it waits, and never forms one.
	run.ordinal = 1
	run.prepare = nil
	log = run.waits(3 * time.Second)
	assert.NotContains(t, log, "kafka-storage.sh format", "%s: controller 1 never formats while no quorum answers", name)
	assert.Contains(t, log, "kafka-metadata-quorum.sh", "%s: controller 1 asks for the quorum", name)

	// Controller 1 on a fresh volume joining the quorum controller 0 formed: adds itself.
	run.prepare = answers(map[int]string{0: "dir-0"}, nodeID(1))
	log, _, _ = run.run()
	assert.Contains(t, log, "--no-initial-controllers", "%s: a controller joining gets a new directory id", name)
	assert.NotRegexp(t, formatsAsVoter, log, "%s: never formatted as a voter", name)
	assert.NotContains(t, log, "remove-controller", "%s: no old voter to remove", name)
	assert.Contains(t, log, "add-controller", "%s: adds itself once caught up", name)

	// Controller 1 whose volume was lost while the quorum lives on: replaces its old voter entry.
	run.prepare = answers(map[int]string{0: "dir-0", nodeID(1): "lostdir", 2: "dir-2"}, nodeID(1))
	log, _, _ = run.run()
	assert.NotRegexp(t, formatsAsVoter, log, "%s: never re-formatted as a voter", name)
	remove := strings.Index(log, fmt.Sprintf("remove-controller --controller-id %d --controller-directory-id lostdir", nodeID(1)))
	add := strings.Index(log, "add-controller")
	assert.True(t, remove >= 0 && add > remove, "%s: removes the voter with the lost directory, then adds itself:\n%s", name, log)

	// The same controller restarting with its log directory: nothing to format, no quorum tool.
	run.prepare = func(stubDir string, pod *podrun.Pod) {
		vol, err := pod.Claim("data")
		require.NoError(t, err)
		dir := filepath.Join(vol, strings.TrimPrefix(logDir, "/var/lib/kafka/data/"))
		require.NoError(t, os.MkdirAll(dir, 0o777))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "meta.properties"), []byte(fmt.Sprintf("node.id=%d\ndirectory.id=dir-1\n", nodeID(1))), 0o644))
	}
	log, _, _ = run.run()
	assert.NotContains(t, log, "kafka-storage.sh format", "%s: an intact log directory is not formatted", name)
	assert.NotContains(t, log, "kafka-metadata-quorum.sh", "%s: an intact controller runs no quorum tool beside Kafka", name)
}

func atoi(t *testing.T, s string) int {
	var n int
	_, err := fmt.Sscan(s, &n)
	require.NoError(t, err)
	return n
}

// TestElasticsearchStartDecisions: the start command passes cluster.initial_master_nodes only to
// a node whose data path (a folder below the volume's root) is empty, and only in multi-node
// discovery; a fresh volume holding lost+found counts as empty.
func TestElasticsearchStartDecisions(t *testing.T) {
	t.Parallel()
	storeScriptsNeed(t)
	for _, c := range repo(t).Clusters {
		for _, sts := range objectsOf(c, "StatefulSet", dataNamespace) {
			if sts.GetLabels()["app.kubernetes.io/name"] != "elasticsearch" {
				continue
			}
			name := c.Name + "/" + sts.GetName()
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				multi, _ := configData(c, "elasticsearch", "discovery-type")
				masters, _ := configData(c, "elasticsearch", "initial-master-nodes")
				yml, _ := configData(c, "elasticsearch", "elasticsearch.yml")
				dataPath := property(yml, "path.data")
				run := stubRun{t: t, cluster: c, kind: "StatefulSet", workload: sts.GetName(), container: "elasticsearch",
					stubs: "elasticsearch", bindAt: "/usr/local/bin"}
				// The init container copies the image's config folder and elasticsearch.yml into the
				// emptyDir `config`; the image's folder is not here, so the test puts elasticsearch.yml there.
				copyConfig := func(_ string, pod *podrun.Pod) {
					d, err := pod.EmptyDir("config")
					require.NoError(t, err)
					require.NoError(t, os.WriteFile(filepath.Join(d, "elasticsearch.yml"), []byte(yml), 0o644))
				}
				run.prepare = copyConfig
				log, pod, _ := run.run()
				vol, _ := pod.Claim("data")
				_, err := os.Stat(filepath.Join(vol, strings.TrimPrefix(dataPath, "/usr/share/elasticsearch/data/")))
				assert.NoError(t, err, "%s: path.data %s is a folder below the volume's root", name, dataPath)
				if multi == "multi-node" {
					assert.Contains(t, log, "env cluster.initial_master_nodes="+masters, "%s: a fresh volume (lost+found only) bootstraps", name)
				} else {
					assert.NotContains(t, log, "cluster.initial_master_nodes", "%s: single-node discovery never bootstraps a cluster", name)
				}
				run.prepare = func(stubDir string, pod *podrun.Pod) {
					copyConfig(stubDir, pod)
					vol, err := pod.Claim("data")
					require.NoError(t, err)
					d := filepath.Join(vol, strings.TrimPrefix(dataPath, "/usr/share/elasticsearch/data/"))
					require.NoError(t, os.MkdirAll(d, 0o777))
					require.NoError(t, os.WriteFile(filepath.Join(d, "node.lock"), nil, 0o644))
				}
				log, _, _ = run.run()
				assert.NotContains(t, log, "cluster.initial_master_nodes", "%s: a node whose data path holds a cluster never bootstraps another", name)
			})
		}
	}
	t.Cleanup(func() {
		if !t.Failed() {
			fmt.Println("store scripts: elasticsearch start decisions (initial_master_nodes only on an empty data path below the volume root): every node set of dev, staging and prod")
		}
	})
}

// TestClickHouseIdentities: each Keeper's start command exports server_id = ordinal + 1, which is
// the raft.xml entry naming that pod; each server's shard macro and interserver host name the
// replica that cluster.xml lists; the servers' Keeper list is exactly the Keeper pods.
func TestClickHouseIdentities(t *testing.T) {
	t.Parallel()
	storeScriptsNeed(t)
	for _, c := range repo(t).Clusters {
		raftXML, _ := configData(c, "clickhouse-keeper", "raft.xml")
		clusterXML, _ := configData(c, "clickhouse-server", "cluster.xml")
		var raft struct {
			Servers []struct {
				ID       int    `xml:"id"`
				Hostname string `xml:"hostname"`
			} `xml:"keeper_server>raft_configuration>server"`
		}
		require.NoError(t, xml.Unmarshal([]byte(raftXML), &raft))
		var topo struct {
			Shards []struct {
				Replicas []struct {
					Host string `xml:"host"`
				} `xml:"replica"`
			} `xml:"remote_servers>cloudlab>shard"`
			Keepers []struct {
				Host string `xml:"host"`
			} `xml:"zookeeper>node"`
		}
		require.NoError(t, xml.Unmarshal([]byte(clusterXML), &topo))
		keeper := statefulSets(c)["clickhouse-keeper"]
		governing, _, _ := unstructured.NestedString(keeper.Object, "spec", "serviceName")
		require.Len(t, raft.Servers, int(replicas(keeper)), "%s: raft.xml lists every Keeper", c.Name)
		require.Len(t, topo.Keepers, int(replicas(keeper)), "%s: cluster.xml lists every Keeper", c.Name)
		for i := 0; i < int(replicas(keeper)); i++ {
			host := fmt.Sprintf("clickhouse-keeper-%d.%s.%s.svc.cluster.local", i, governing, dataNamespace)
			log, _, _ := stubRun{t: t, cluster: c, kind: "StatefulSet", workload: "clickhouse-keeper", ordinal: i, container: "keeper", stubs: "clickhouse"}.run()
			assert.Contains(t, log, fmt.Sprintf("KEEPER_SERVER_ID=%d", i+1), "%s: keeper-%d's server id", c.Name, i)
			assert.Equal(t, i+1, raft.Servers[i].ID, "%s: raft.xml entry %d", c.Name, i)
			assert.Equal(t, host, raft.Servers[i].Hostname, "%s: raft.xml names keeper-%d by its pod name", c.Name, i)
			assert.Equal(t, host, topo.Keepers[i].Host, "%s: the servers' Keeper list", c.Name)
		}
		shards := 0
		for name, sts := range statefulSets(c) {
			if !strings.HasPrefix(name, "clickhouse-shard-") {
				continue
			}
			shard := atoi(t, strings.TrimPrefix(name, "clickhouse-shard-"))
			shards++
			require.Greater(t, len(topo.Shards), shard, "%s: cluster.xml lists shard %d", c.Name, shard)
			require.Len(t, topo.Shards[shard].Replicas, int(replicas(sts)), "%s: cluster.xml lists every replica of shard %d", c.Name, shard)
			for i := 0; i < int(replicas(sts)); i++ {
				log, _, _ := stubRun{t: t, cluster: c, kind: "StatefulSet", workload: name, ordinal: i, container: "clickhouse", stubs: "clickhouse"}.run()
				fqdn := fmt.Sprintf("%s-%d.%s.%s.svc.cluster.local", name, i, name, dataNamespace)
				assert.Contains(t, log, fmt.Sprintf("CH_SHARD=%d POD_FQDN=%s", shard, fqdn), "%s: %s-%d's macros", c.Name, name, i)
				assert.Equal(t, fqdn, topo.Shards[shard].Replicas[i].Host, "%s: cluster.xml names the replica by its pod name", c.Name)
			}
		}
		assert.Len(t, topo.Shards, shards, "%s: cluster.xml lists exactly the shard StatefulSets", c.Name)
	}
	fmt.Println("store scripts: clickhouse identities (Keeper server ids and raft members, shard macros, replica hosts): dev, staging and prod")
}
