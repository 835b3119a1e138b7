package policytest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudlab/platform/policytest/internal/podrun"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// pgFixture is prod's PostgreSQL StatefulSet running as three sandboxed pods.
type pgFixture struct {
	t        *testing.T
	ctx      context.Context
	cluster  *podrun.Cluster
	pods     []*podrun.Pod
	password string
	net      string            // this run's loopback block, 127.x.y.
	env      map[string]string // what a change in git would render differently (PRIMARY after a failover)
}

// TestPostgreSQLScripts runs prod's PostgreSQL (primary + two replicas) from its rendered objects
// with Debian's PostgreSQL (15 on Debian 12; the image is 17.6: the scripts use nothing that
// differs between them — initdb --data-checksums, pg_basebackup -S, pg_rewind, pg_promote(),
// max_slot_wal_keep_size all exist since 13). Each "pod" has its own data volume, which starts
// with lost+found like a fresh ext4 volume:
//
//  1. first start of all three at once (podManagementPolicy Parallel): the primary initialises,
//     the replicas clone it and stream;
//  2. a replica's volume is lost twice: deleting volume and pod re-clones it each time (its
//     earlier slot is dropped first), and no orphaned slot remains;
//  3. backup and restore as docs/data/postgresql.md writes them (the restore CronJob's Job);
//  4. the runbook's failover: the primary is lost; the most advanced replica is promoted; the
//     old primary's node returning before `primary` is changed refuses to start (no second
//     primary); the read-write Service re-pointed, the other replica restarted; measured:
//     seconds from the primary's loss to the first write accepted through `postgresql`;
//  5. the old primary returns: it is rewound (pg_rewind, not a clone) into a replica by itself.
func TestPostgreSQLScripts(t *testing.T) {
	t.Parallel()
	storeScriptsNeed(t, "initdb", "pg_basebackup", "pg_rewind")
	f := newPGFixture(t)
	defer f.stop()

	took := f.startAll()
	f.write("CREATE TABLE orders (id int PRIMARY KEY, note text)", "INSERT INTO orders VALUES (1, 'before')")
	f.replicated(1, f.pods[1], f.pods[2])
	fmt.Printf("store scripts: postgresql first start (primary + 2 replicas, lost+found on every volume): all ready in %.1fs\n", took)

	var reclone []string
	for i := 1; i <= 2; i++ {
		start := time.Now()
		f.pods[2].Stop(10 * time.Second)
		require.NoError(t, f.pods[2].DeleteClaim("data"))
		f.start(f.pods[2])
		f.write(fmt.Sprintf("INSERT INTO orders VALUES (%d, 'after re-clone')", 1+i))
		f.replicated(1+i, f.pods[2])
		reclone = append(reclone, fmt.Sprintf("%.1fs", time.Since(start).Seconds()))
	}
	slots := f.query(f.pods[0], "SELECT string_agg(slot_name || ':' || active, ',' ORDER BY slot_name) FROM pg_replication_slots")
	assert.Equal(t, "replica_1:true,replica_2:true", slots, "after two re-clones: one active slot per replica, none orphaned")
	fmt.Printf("store scripts: postgresql re-clone of a replica whose volume was lost, twice: %s (slots %s)\n", strings.Join(reclone, ", "), slots)

	f.backupAndRestore()

	down := f.failover()
	fmt.Printf("store scripts: postgresql failover by the runbook (promote postgresql-1, the old primary refuses to start while still named primary, re-point postgresql, restart postgresql-2): writes unavailable %.1fs\n", down)

	took = f.rejoinOldPrimary()
	fmt.Printf("store scripts: postgresql old primary returns: rewound into a replica of postgresql-1 in %.1fs\n", took)
}

func newPGFixture(t *testing.T) *pgFixture {
	c := clusterNamed(t, "prod")
	objs := dataObjects(c)
	sts := workload(t, objs, "StatefulSet", "postgresql")
	tmpl, err := podrun.TemplateOf(sts)
	require.NoError(t, err)
	f := &pgFixture{t: t, ctx: context.Background(), password: randomSecret(t), net: loopbackBlock(t), env: map[string]string{}}
	secrets := map[string]map[string]string{
		"postgresql-credentials": {"password": f.password, "replication-password": randomSecret(t)},
	}
	images := map[string]podrun.Image{
		"postgres:17.6": {Path: []string{standins(t, "postgres"), postgresBin(t)}, User: "postgres"},
	}
	f.cluster, err = podrun.NewCluster(storesWorkDir(t), dataNamespace, objs, secrets, images)
	require.NoError(t, err)
	for i := 0; i < int(replicas(sts)); i++ {
		p := f.cluster.NewPod(fmt.Sprintf("postgresql-%d", i), fmt.Sprintf("%s%d", f.net, 10+i), tmpl)
		f.pods = append(f.pods, p)
		require.NoError(t, f.cluster.SetName(p.Name+".postgresql-headless", p.IP))
	}
	require.Len(t, f.pods, 3, "prod runs a primary and two replicas")
	// The read-write Service selects the pod its rendered selector names.
	rw := workload(t, objs, "Service", "postgresql")
	primary, _, _ := unstructured.NestedString(rw.Object, "spec", "selector", "statefulset.kubernetes.io/pod-name")
	require.Equal(t, "postgresql-0", primary)
	f.point(f.pods[0])
	require.NoError(t, f.cluster.SetName("postgresql-read", f.pods[1].IP))
	return f
}

// point makes the read-write Service `postgresql` select p (its selector, as the runbook changes it).
func (f *pgFixture) point(p *podrun.Pod) {
	require.NoError(f.t, f.cluster.SetName("postgresql", p.IP))
}

// start runs a pod as the kubelet would: its init container to the end, then PostgreSQL, until
// its readiness probe passes. It returns the seconds that took.
func (f *pgFixture) start(p *podrun.Pod) float64 {
	took, err := f.tryStart(p)
	require.NoError(f.t, err)
	return took
}

func (f *pgFixture) tryStart(p *podrun.Pod) (float64, error) {
	begin := time.Now()
	if out, err := p.Run(f.ctx, "prepare", f.env, 3*time.Minute); err != nil {
		return 0, fmt.Errorf("%w\n%s", err, out)
	}
	pr, err := p.Start(f.ctx, "postgresql", nil)
	if err != nil {
		return 0, err
	}
	probe := p.Template.Spec.Containers[0].ReadinessProbe
	for time.Since(begin) < 2*time.Minute {
		if pr.Exited() {
			out, _ := os.ReadFile(pr.Log)
			return 0, fmt.Errorf("%s: postgresql exited:\n%s", p.Name, out)
		}
		if p.Probe(f.ctx, "postgresql", probe) == nil {
			return time.Since(begin).Seconds(), nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	out, _ := os.ReadFile(pr.Log)
	return 0, fmt.Errorf("%s: not ready in 2 minutes:\n%s", p.Name, out)
}

func (f *pgFixture) startAll() float64 {
	begin := time.Now()
	errs := make([]error, len(f.pods))
	var wg sync.WaitGroup
	for i, p := range f.pods {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = f.tryStart(p) }()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(f.t, err)
	}
	// The data directory is a folder beside lost+found, never the volume's root.
	for _, p := range f.pods {
		d, err := p.Claim("data")
		require.NoError(f.t, err)
		_, err = os.Stat(filepath.Join(d, "lost+found"))
		assert.NoError(f.t, err, "%s: the volume keeps its lost+found", p.Name)
		_, err = os.Stat(filepath.Join(d, "pgdata", "PG_VERSION"))
		assert.NoError(f.t, err, "%s: the data directory is pgdata/ below the volume's root", p.Name)
	}
	return time.Since(begin).Seconds()
}

func (f *pgFixture) stop() {
	for _, p := range f.pods {
		p.Stop(5 * time.Second)
	}
}

// psql runs SQL in a pod's postgresql container through `postgresql` (the read-write Service) or
// locally, as `kubectl exec` would.
func (f *pgFixture) psql(p *podrun.Pod, host string, sql ...string) (string, error) {
	args := []string{"env", "PGPASSWORD=" + f.password, "PGCONNECT_TIMEOUT=2", "psql", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-tAq"}
	if host != "" {
		args = append(args, "-h", host)
	}
	for _, s := range sql {
		args = append(args, "-c", s)
	}
	out, err := p.Exec(f.ctx, "postgresql", 30*time.Second, args...)
	return strings.TrimSpace(out), err
}

func (f *pgFixture) query(p *podrun.Pod, sql string) string {
	out, err := f.psql(p, "", sql)
	require.NoError(f.t, err, out)
	return out
}

// write goes through the read-write Service, from a replica's pod (any client would do).
func (f *pgFixture) write(sql ...string) {
	out, err := f.psql(f.pods[len(f.pods)-1], "postgresql", sql...)
	require.NoError(f.t, err, out)
}

func (f *pgFixture) replicated(id int, on ...*podrun.Pod) {
	for _, p := range on {
		eventually(f.t, time.Minute, fmt.Sprintf("row %d on %s", id, p.Name), func() error {
			out, err := f.psql(p, "", fmt.Sprintf("SELECT count(*) FROM orders WHERE id = %d", id))
			if err != nil || out != "1" {
				return fmt.Errorf("%q %v", out, err)
			}
			return nil
		})
	}
}

// backupAndRestore runs the backup CronJob's container as rendered, then the restore CronJob
// as the runbook starts it (a Job from it): the newest dump loaded into the primary through
// `postgresql` (over the data the dump still has, a restore adds back what was lost).
func (f *pgFixture) backupAndRestore() {
	t := f.t
	objs := dataObjects(clusterNamed(t, "prod"))
	run := func(cronJob, container string) string {
		tmpl, err := podrun.TemplateOf(workload(t, objs, "CronJob", cronJob))
		require.NoError(t, err)
		return runJob(t, f.ctx, workload(t, objs, "CronJob", cronJob), f.cluster.NewPod(cronJob+"-1", f.net+"50", tmpl), container)
	}
	begin := time.Now()
	out := run("postgresql-backup", "backup")
	dir, err := f.cluster.Claim("postgresql-backups")
	require.NoError(t, err)
	dumps, _ := filepath.Glob(filepath.Join(dir, "dumps", "cloudlab-*.sql.gz"))
	require.Len(t, dumps, 1, "one dump in dumps/ below the backup volume's root:\n%s", out)
	took := time.Since(begin).Seconds()

	f.write("DELETE FROM orders")
	begin = time.Now()
	out = run("postgresql-restore", "restore")
	assert.Contains(t, out, "restoring "+filepath.Base(dumps[0]), "the restore Job takes the newest dump")
	assert.Equal(t, "3", f.query(f.pods[0], "SELECT count(*) FROM orders"), "the restore brings back the three rows the dump holds")
	fmt.Printf("store scripts: postgresql backup (CronJob as rendered, into dumps/) %.1fs; restore (the runbook's Job from CronJob postgresql-restore) %.1fs\n", took, time.Since(begin).Seconds())
}

// failover: the runbook's steps after the primary's node is lost.
func (f *pgFixture) failover() float64 {
	t := f.t
	f.write("INSERT INTO orders VALUES (10, 'last before the loss')")
	f.replicated(10, f.pods[1], f.pods[2])
	lost := time.Now()
	f.pods[0].Kill()
	// The selected pod is gone: the read-write name resolves to nothing.
	require.NoError(t, f.cluster.SetName("postgresql", ""))

	// 1. the most advanced replica, 2. promote it, 3. point the read-write Service at it (the
	// one-line `primary` change), 4. restart the other replica so that it streams (through its
	// slot) from the new primary.
	lsn1 := f.query(f.pods[1], "SELECT pg_last_wal_replay_lsn()")
	lsn2 := f.query(f.pods[2], "SELECT pg_last_wal_replay_lsn()")
	newPrimary, other := f.pods[1], f.pods[2]
	if f.query(f.pods[1], fmt.Sprintf("SELECT pg_wal_lsn_diff('%s', '%s') < 0", lsn1, lsn2)) == "t" {
		newPrimary, other = f.pods[2], f.pods[1]
	}
	require.Equal(t, "postgresql-1", newPrimary.Name, "both replicas replayed everything; the runbook then takes the lowest ordinal")
	require.Equal(t, "t", f.query(newPrimary, "SELECT pg_promote()"))

	// The old primary's node returns before the change of `primary` is merged: it is still named
	// the primary, and must refuse to start (two primaries would take writes).
	out, err := f.pods[0].Run(f.ctx, "prepare", f.env, time.Minute)
	require.Error(t, err, "the old primary must not start as a primary while postgresql-1 is one:\n%s", out)
	require.Contains(t, out, "refusing to start as the primary: postgresql-1.postgresql-headless is a primary")

	f.env["PRIMARY"] = newPrimary.Name
	f.point(newPrimary)
	eventually(t, time.Minute, "a write through postgresql", func() error {
		_, err := f.psql(other, "postgresql", "INSERT INTO orders VALUES (11, 'first after the failover')")
		return err
	})
	down := time.Since(lost).Seconds()
	other.Stop(10 * time.Second)
	f.start(other)
	f.write("INSERT INTO orders VALUES (12, 'replicated after the failover')")
	f.replicated(12, other)
	assert.Equal(t, "t", f.query(other, "SELECT pg_is_in_recovery()"))
	return down
}

// rejoinOldPrimary: the lost primary's pod returns with its volume once `primary` names
// postgresql-1; prepare.sh rewinds it into a replica (pg_rewind, not a new clone).
func (f *pgFixture) rejoinOldPrimary() float64 {
	old := f.pods[0]
	begin := time.Now()
	out, err := old.Run(f.ctx, "prepare", f.env, 3*time.Minute)
	require.NoError(f.t, err, out)
	assert.Contains(f.t, out, "rewinding it onto the primary's timeline")
	assert.NotContains(f.t, out, "cloning again", "rewound, not cloned again")
	_, err = old.Start(f.ctx, "postgresql", nil)
	require.NoError(f.t, err)
	probe := old.Template.Spec.Containers[0].ReadinessProbe
	eventually(f.t, 2*time.Minute, "the old primary ready as a replica", func() error { return old.Probe(f.ctx, "postgresql", probe) })
	took := time.Since(begin).Seconds()
	assert.Equal(f.t, "t", f.query(old, "SELECT pg_is_in_recovery()"), "the old primary is a replica now")
	f.write("INSERT INTO orders VALUES (13, 'seen by the old primary')")
	f.replicated(13, old)
	return took
}
