package policytest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudlab/platform/policytest/internal/podrun"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// redisFixture is prod's Redis Cluster (3 masters + 3 replicas) running as six sandboxed pods.
type redisFixture struct {
	t        *testing.T
	ctx      context.Context
	cluster  *podrun.Cluster
	pods     []*podrun.Pod
	password string
	net      string // this run's loopback block, 127.x.y.
	headless string // the StatefulSet's governing Service: the pods' names are <pod>.<it>
}

// TestRedisClusterScripts runs prod's Redis Cluster from its rendered objects with Debian's Redis
// standing in for Valkey (7.0 on Debian 12 for Valkey 8.1: the same cluster bus, nodes.conf, and
// the announced hostnames of 7.0): start.sh on six pods, the PostSync bootstrap Job's script to
// form the cluster, keys written through MOVED redirects to the announced hostnames; then
//
//  1. one member returns on a new IP;
//  2. every member returns on a new IP (a node-group replacement, a whole-cluster restart), and
//     the DNS names follow only after all of them started: no node can reach any peer at start;
//
// and after each the cluster must reach cluster_state:ok by itself, every node connected to every
// other at its current address, every key still readable — and the bootstrap Job, run again as
// at the next sync, must succeed. Measured: seconds to heal.
func TestRedisClusterScripts(t *testing.T) {
	t.Parallel()
	storeScriptsNeed(t, "redis-server", "redis-cli")
	f := newRedisFixture(t)
	defer func() {
		for _, p := range f.pods {
			p.Stop(5 * time.Second)
		}
	}()

	begin := time.Now()
	for _, p := range f.pods {
		f.start(p)
	}
	out := f.bootstrap()
	require.Contains(t, out, "[OK] All 16384 slots covered", "the bootstrap Job forms the cluster")
	took := f.healthy("formed")
	f.keys("set", 200)
	fmt.Printf("store scripts: redis cluster formed by the bootstrap Job (6 nodes, 3 masters + 3 replicas): ok in %.1fs, %.1fs after the Job\n", time.Since(begin).Seconds(), took)

	f.backupAndRestore()

	p := f.pods[3]
	p.Stop(30 * time.Second)
	f.move(p, loopbackBlock(t)+"13")
	f.start(p)
	took = f.healthy("redis-3 back on a new IP")
	f.keys("get", 200)
	fmt.Printf("store scripts: redis one member returns on a new IP: healed in %.1fs, 200/200 keys readable\n", took)

	for _, p := range f.pods {
		p.Stop(30 * time.Second)
	}
	// Every pod starts on a new IP before any name follows (DNS lags behind the pods): at its start
	// no node can resolve a peer's new address; only start.sh's loop, meeting peers again by
	// name once the names follow, can join them.
	begin = time.Now()
	block := loopbackBlock(t)
	for i, p := range f.pods {
		p.IP = fmt.Sprintf("%s%d", block, 10+i)
		f.start(p)
	}
	for _, p := range f.pods {
		f.move(p, p.IP)
	}
	took = f.healthy("every member back on a new IP")
	f.keys("get", 200)
	require.Contains(t, f.bootstrap(), "cluster already formed", "the PostSync Job succeeds at the next sync")
	fmt.Printf("store scripts: redis every member returns on a new IP: healed by itself in %.1fs after the names followed (%.1fs after the first start), 200/200 keys readable, bootstrap Job ok\n",
		took, time.Since(begin).Seconds())
}

func newRedisFixture(t *testing.T) *redisFixture {
	c := clusterNamed(t, "prod")
	objs := dataObjects(c)
	sts := workload(t, objs, "StatefulSet", "redis")
	tmpl, err := podrun.TemplateOf(sts)
	require.NoError(t, err)
	governing, _, _ := unstructured.NestedString(sts.Object, "spec", "serviceName")
	f := &redisFixture{t: t, ctx: context.Background(), password: randomSecret(t), net: loopbackBlock(t), headless: governing}
	secrets := map[string]map[string]string{"redis-credentials": {"password": f.password}}
	images := map[string]podrun.Image{"valkey/valkey:8.1.4": {Path: []string{standins(t, "valkey")}, User: "valkey"}}
	f.cluster, err = podrun.NewCluster(storesWorkDir(t), dataNamespace, objs, secrets, images)
	require.NoError(t, err)
	for i := 0; i < int(replicas(sts)); i++ {
		p := f.cluster.NewPod(fmt.Sprintf("redis-%d", i), fmt.Sprintf("%s%d", f.net, 10+i), tmpl)
		f.pods = append(f.pods, p)
		require.NoError(t, f.cluster.SetName(p.Name+"."+f.headless, p.IP))
	}
	require.Len(t, f.pods, 6)
	require.NoError(t, f.cluster.SetName("redis", f.pods[0].IP))
	return f
}

// move gives a stopped pod a new IP, and its name the new address (the headless Service's
// record follows the pod).
func (f *redisFixture) move(p *podrun.Pod, ip string) {
	p.IP = ip
	require.NoError(f.t, f.cluster.SetName(p.Name+"."+f.headless, ip))
	if p == f.pods[0] {
		require.NoError(f.t, f.cluster.SetName("redis", ip))
	}
}

func (f *redisFixture) start(p *podrun.Pod) {
	pr, err := p.Start(f.ctx, "redis", nil)
	require.NoError(f.t, err)
	probe := p.Template.Spec.Containers[0].ReadinessProbe
	eventually(f.t, time.Minute, p.Name+" ready", func() error {
		if pr.Exited() {
			out, _ := os.ReadFile(pr.Log)
			f.t.Fatalf("%s exited:\n%s", p.Name, out)
		}
		return p.Probe(f.ctx, "redis", probe)
	})
}

func (f *redisFixture) cli(p *podrun.Pod, args ...string) (string, error) {
	out, err := p.Exec(f.ctx, "redis", 30*time.Second, append([]string{"valkey-cli", "-a", f.password, "--no-auth-warning"}, args...)...)
	return strings.ReplaceAll(out, "\r", ""), err
}

// bootstrap runs the PostSync Job's container as rendered.
func (f *redisFixture) bootstrap() string {
	objs := dataObjects(clusterNamed(f.t, "prod"))
	tmpl, err := podrun.TemplateOf(workload(f.t, objs, "Job", "redis-cluster-bootstrap"))
	require.NoError(f.t, err)
	job := f.cluster.NewPod("redis-cluster-bootstrap-1", f.net+"50", tmpl)
	out, err := job.Run(f.ctx, "bootstrap", nil, 3*time.Minute)
	require.NoError(f.t, err, out)
	return out
}

// healthy waits until every node says cluster_state:ok and knows all six nodes, connected and
// without a failure flag, each at its current address; it returns the seconds that took.
func (f *redisFixture) healthy(what string) float64 {
	return eventually(f.t, 3*time.Minute, "redis cluster healthy: "+what, func() error {
		for _, p := range f.pods {
			info, err := f.cli(p, "cluster", "info")
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				return fmt.Errorf("%s: cluster info: %v %s", p.Name, err, firstLine(info, "cluster_state"))
			}
			nodes, err := f.cli(p, "cluster", "nodes")
			if err != nil {
				return err
			}
			lines := strings.Split(strings.TrimSpace(nodes), "\n")
			if len(lines) != len(f.pods) {
				return fmt.Errorf("%s knows %d nodes", p.Name, len(lines))
			}
			for _, l := range lines {
				fields := strings.Fields(l)
				if len(fields) < 8 || strings.Contains(fields[2], "fail") || fields[7] != "connected" || !f.current(fields[1]) {
					return fmt.Errorf("%s sees %s", p.Name, l)
				}
			}
		}
		return nil
	})
}

// current: a node's address (ip:port@cport,hostname...) is its pod's current IP.
func (f *redisFixture) current(addr string) bool {
	ip := addr[:strings.Index(addr, ":")]
	for _, p := range f.pods {
		if strings.Contains(addr, ","+p.Name+".") {
			return p.IP == ip
		}
	}
	return false
}

func firstLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return strings.TrimSpace(s)
}

// keys sets or reads key1..keyN through a cluster-aware client (-c: it follows MOVED to the
// hostnames the nodes announce).
func (f *redisFixture) keys(op string, n int) {
	script := fmt.Sprintf(`i=1; while [ $i -le %d ]; do
  if [ %q = set ]; then r=$(valkey-cli -c -a "$REDIS_PASSWORD" --no-auth-warning set key$i v$i); [ "$r" = OK ] || { echo "set key$i: $r"; exit 1; }
  else r=$(valkey-cli -c -a "$REDIS_PASSWORD" --no-auth-warning get key$i); [ "$r" = v$i ] || { echo "get key$i: $r"; exit 1; }; fi
  i=$((i + 1)); done`, n, op)
	out, err := f.pods[0].Exec(f.ctx, "redis", 2*time.Minute, "sh", "-c", script)
	require.NoError(f.t, err, "%s %d keys: %s", op, n, out)
}

// backupAndRestore runs the backup CronJob's container as rendered (an RDB per master), empties
// one master, and restores it as docs/data/redis.md says: its RDB copied in as dump.rdb, then
// CONFIG SET appendonly no, DEBUG RELOAD NOSAVE, CONFIG SET appendonly yes — and its keys are back
// after a restart too (the AOF was rewritten).
func (f *redisFixture) backupAndRestore() {
	t := f.t
	objs := dataObjects(clusterNamed(t, "prod"))
	tmpl, err := podrun.TemplateOf(workload(t, objs, "CronJob", "redis-backup"))
	require.NoError(t, err)
	out := runJob(t, f.ctx, workload(t, objs, "CronJob", "redis-backup"), f.cluster.NewPod("redis-backup-1", f.net+"51", tmpl), "backup")
	backups, err := f.cluster.Claim("redis-backups")
	require.NoError(t, err)

	var master *podrun.Pod
	for _, p := range f.pods {
		if role, _ := f.cli(p, "role"); strings.HasPrefix(role, "master") {
			master = p
			break
		}
	}
	require.NotNil(t, master)
	before, _ := f.cli(master, "dbsize")
	rdbs, _ := filepath.Glob(filepath.Join(backups, "rdb", "*-"+master.IP+".rdb"))
	require.Len(t, rdbs, 1, "one RDB of %s in rdb/ below the backup volume's root:\n%s", master.Name, out)

	begin := time.Now()
	_, err = f.cli(master, "flushall")
	require.NoError(t, err)
	vol, err := master.Claim("data")
	require.NoError(t, err)
	data, err := os.ReadFile(rdbs[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(vol, "redis", "dump.rdb"), data, 0o644))
	for _, cmd := range [][]string{{"config", "set", "appendonly", "no"}, {"debug", "reload", "nosave"}, {"config", "set", "appendonly", "yes"}} {
		out, err := f.cli(master, cmd...)
		require.NoError(t, err, "%v: %s", cmd, out)
	}
	after, _ := f.cli(master, "dbsize")
	require.Equal(t, strings.TrimSpace(before), strings.TrimSpace(after), "%s: the keys of its RDB are back", master.Name)
	took := time.Since(begin).Seconds()
	// The AOF now holds them: a restart keeps them.
	eventually(t, 30*time.Second, "AOF rewritten", func() error {
		info, _ := f.cli(master, "info", "persistence")
		if !strings.Contains(info, "aof_rewrite_in_progress:0") || !strings.Contains(info, "aof_enabled:1") {
			return fmt.Errorf("%s", firstLine(info, "aof_rewrite_in_progress"))
		}
		return nil
	})
	master.Stop(30 * time.Second)
	f.start(master)
	f.healthy("after the restore")
	restarted, _ := f.cli(master, "dbsize")
	require.Equal(t, strings.TrimSpace(before), strings.TrimSpace(restarted), "%s: the restored keys survive a restart", master.Name)
	fmt.Printf("store scripts: redis backup (CronJob as rendered, an RDB per master into rdb/) and the runbook's restore of %s: %s keys back in %.1fs, kept across a restart\n",
		master.Name, strings.TrimSpace(after), took)
}
