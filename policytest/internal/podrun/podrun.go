// Package podrun runs the containers of rendered pod templates on this machine, so that the
// stores' own scripts execute exactly as rendered: the command, arguments and environment of the
// container (with valueFrom and $(VAR) expansion as the kubelet does), its volume mounts
// (ConfigMap and Secret volumes written out from the rendered objects, emptyDirs, and one
// persistent folder per volume claim that starts, like a fresh ext4 volume, with lost+found), its
// user and group, a read-only root filesystem, HOSTNAME set to the pod's name, and an /etc/hosts
// that resolves the cluster's DNS names (pods' per-pod names, Services) to the pods' addresses.
//
// Each container runs in a bubblewrap (bwrap) sandbox: a fresh mount namespace with the host's
// /usr and /etc read-only, so absolute paths in the scripts (/config/start.sh, /var/lib/...) are
// the pod's. The network is the host's: each pod has its own loopback address (127.0.x.y) as pod
// IP. Where the image's software is not the host's, an Image says what stands in for it:
// Debian's packages (PostgreSQL, Redis for Valkey) or stub commands that record their arguments.
//
// What it does not do: probes on a schedule, restarts, resource limits, a network namespace per
// pod (servers that would listen on every address are told the pod's address by their Image's
// wrapper), Services with load balancing (a Service name resolves to the pods the test says).
package podrun

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Image says how a container image's commands are found on this machine.
type Image struct {
	// Path is prepended to the container's PATH (host folders, bound read-only at the same path).
	Path []string
	// Bind maps a path inside the sandbox to a host path (read-only), e.g. stub commands at the
	// image's own install location.
	Bind map[string]string
	// Env is added to the container's environment (e.g. where a stub writes what it recorded).
	Env map[string]string
	// User names the container's user in its /etc/passwd (some programs, initdb among them, look
	// their user up); "container" if empty.
	User string
	// Writable maps a path inside the sandbox to a host folder bound read-write (e.g. where a
	// stub writes what it recorded).
	Writable map[string]string
}

// Cluster is the world the pods of one test share: the rendered ConfigMaps and Secrets their
// volumes and environment read, the images, and the names /etc/hosts resolves.
type Cluster struct {
	Dir        string                       // a work folder of the test (pods' volumes, hosts file)
	Namespace  string                       // the namespace of every pod (DNS names)
	ConfigMaps map[string]map[string]string // by the name the pod templates reference
	Secrets    map[string]map[string]string
	Images     map[string]Image // by image reference as rendered

	mu    sync.Mutex
	names map[string]string // DNS name -> address
}

// NewCluster reads the ConfigMaps among objs; Secrets are given by the test (External Secrets
// would create them in a real cluster).
func NewCluster(dir, namespace string, objs []*unstructured.Unstructured, secrets map[string]map[string]string, images map[string]Image) (*Cluster, error) {
	c := &Cluster{Dir: dir, Namespace: namespace, ConfigMaps: map[string]map[string]string{}, Secrets: secrets, Images: images, names: map[string]string{}}
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && o.GetNamespace() == namespace {
			data, _, _ := unstructured.NestedStringMap(o.Object, "data")
			c.ConfigMaps[o.GetName()] = data
		}
	}
	return c, c.writeHosts()
}

// SetName makes a DNS name (and its short forms within the namespace) resolve to addr; an empty
// addr removes it. Pods see the change at once (their /etc/hosts is this file).
func (c *Cluster) SetName(name, addr string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if addr == "" {
		delete(c.names, name)
	} else {
		c.names[name] = addr
	}
	return c.writeHostsLocked()
}

func (c *Cluster) writeHosts() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeHostsLocked()
}

// writeHostsLocked rewrites the hosts file in place (same inode: bind mounts see the change).
func (c *Cluster) writeHostsLocked() error {
	var b strings.Builder
	b.WriteString("127.0.0.1 localhost\n")
	names := make([]string, 0, len(c.names))
	for n := range c.names {
		names = append(names, n)
	}
	sort.Strings(names)
	suffix := "." + c.Namespace + ".svc.cluster.local"
	for _, n := range names {
		// Both the short name (as a pod of the namespace resolves it through its search list)
		// and the fully qualified one.
		short := strings.TrimSuffix(n, suffix)
		fmt.Fprintf(&b, "%s %s%s %s %s.%s\n", c.names[n], short, suffix, short, short, c.Namespace)
	}
	f, err := os.OpenFile(c.HostsFile(), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// identity writes an /etc/passwd and /etc/group naming the container's user, as its image's do.
func (c *Cluster) identity(user string, uid, gid int64) (passwd, group string, err error) {
	if user == "" {
		user = "container"
	}
	dir := filepath.Join(c.Dir, "identity", fmt.Sprintf("%s-%d-%d", user, uid, gid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	passwd, group = filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	p := "root:x:0:0:root:/root:/bin/sh\n"
	g := "root:x:0:\n"
	if uid != 0 {
		p += fmt.Sprintf("%s:x:%d:%d:%s:/tmp:/bin/sh\n", user, uid, gid, user)
	}
	if gid != 0 {
		g += fmt.Sprintf("%s:x:%d:\n", user, gid)
	}
	if err := os.WriteFile(passwd, []byte(p), 0o644); err != nil {
		return "", "", err
	}
	return passwd, group, os.WriteFile(group, []byte(g), 0o644)
}

// HostsFile is the /etc/hosts of every sandbox.
func (c *Cluster) HostsFile() string { return filepath.Join(c.Dir, "hosts") }

// Pod is one pod of a rendered workload: its name, its address, and its volumes' folders.
type Pod struct {
	Name     string
	IP       string
	Template corev1.PodTemplateSpec
	cluster  *Cluster
	claims   map[string]string // volume claim name -> persistent folder
	mu       sync.Mutex
	running  map[string]*Process
	written  map[string]bool // ConfigMap and Secret volumes written out (once per pod, as the kubelet does)
}

// TemplateOf reads the pod template of a workload object (Deployment, StatefulSet, Job, CronJob).
func TemplateOf(o *unstructured.Unstructured) (corev1.PodTemplateSpec, error) {
	path := []string{"spec", "template"}
	if o.GetKind() == "CronJob" {
		path = []string{"spec", "jobTemplate", "spec", "template"}
	}
	raw, found, err := unstructured.NestedMap(o.Object, path...)
	if !found || err != nil {
		return corev1.PodTemplateSpec{}, fmt.Errorf("%s %s has no pod template", o.GetKind(), o.GetName())
	}
	var t corev1.PodTemplateSpec
	return t, runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &t)
}

// NewPod makes a pod of a template. Claims not yet seen get a fresh folder holding lost+found,
// as a new ext4 volume does.
func (c *Cluster) NewPod(name, ip string, tmpl corev1.PodTemplateSpec) *Pod {
	return &Pod{Name: name, IP: ip, Template: tmpl, cluster: c, claims: map[string]string{}, running: map[string]*Process{}, written: map[string]bool{}}
}

// Claim is the host folder behind a volume claim of the pod (data-<pod> for a StatefulSet's
// volumeClaimTemplate named data): created on first use with lost+found in it.
func (p *Pod) Claim(name string) (string, error) {
	if d, ok := p.claims[name]; ok {
		return d, nil
	}
	d := filepath.Join(p.cluster.Dir, "volumes", name+"-"+p.Name)
	if _, err := os.Stat(d); os.IsNotExist(err) {
		if err := os.MkdirAll(filepath.Join(d, "lost+found"), 0o700); err != nil {
			return "", err
		}
	}
	p.claims[name] = d
	return d, nil
}

// Claim is the host folder behind a PersistentVolumeClaim that pods name (not a
// volumeClaimTemplate): shared by every pod that mounts it; created with lost+found.
func (c *Cluster) Claim(name string) (string, error) {
	d := filepath.Join(c.Dir, "volumes", name)
	if _, err := os.Stat(d); os.IsNotExist(err) {
		if err := os.MkdirAll(filepath.Join(d, "lost+found"), 0o700); err != nil {
			return "", err
		}
	}
	return d, nil
}

// EmptyDir is the host folder of one of the pod's emptyDir volumes (to look into it, or to fill
// it as an init container the test does not run would).
func (p *Pod) EmptyDir(name string) (string, error) {
	d := filepath.Join(p.cluster.Dir, "pods", p.Name, "volumes", name)
	return d, os.MkdirAll(d, 0o777)
}

// DeleteClaim removes a claim's folder: the volume is lost; the next use starts a fresh one.
func (p *Pod) DeleteClaim(name string) error {
	d, err := p.Claim(name)
	if err != nil {
		return err
	}
	delete(p.claims, name)
	return os.RemoveAll(d)
}

// Process is a running container. Its command is the first process of a PID namespace of its
// own (bwrap --unshare-pid --as-pid-1): as in a container, signals go to that process, and when it
// ends, every other process of the container ends with it.
type Process struct {
	Cmd  *exec.Cmd
	Log  string // its output
	pid  int    // the container's first process, as the host sees it
	done chan struct{}
	err  error
}

// Wait waits for the container to end, at most d.
func (pr *Process) Wait(d time.Duration) (exited bool, err error) {
	select {
	case <-pr.done:
		return true, pr.err
	case <-time.After(d):
		return false, nil
	}
}

// Exited reports whether the container has ended.
func (pr *Process) Exited() bool {
	select {
	case <-pr.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the container's first process, as the container runtime does (SIGKILL
// ends the whole container: its PID namespace goes with its first process).
func (pr *Process) Signal(sig syscall.Signal) {
	if pr.pid > 0 {
		_ = syscall.Kill(pr.pid, sig)
	}
}

// Stop ends the container as the kubelet does: SIGTERM, then SIGKILL after grace.
func (pr *Process) Stop(grace time.Duration) {
	pr.Signal(syscall.SIGTERM)
	if ok, _ := pr.Wait(grace); !ok {
		pr.Signal(syscall.SIGKILL)
		_, _ = pr.Wait(10 * time.Second)
	}
}

func (p *Pod) container(name string) (corev1.Container, bool) {
	for _, ctr := range append(append([]corev1.Container{}, p.Template.Spec.InitContainers...), p.Template.Spec.Containers...) {
		if ctr.Name == name {
			return ctr, true
		}
	}
	return corev1.Container{}, false
}

// Start starts a container of the pod (an init container or a regular one) in the background.
func (p *Pod) Start(ctx context.Context, container string, extraEnv map[string]string) (*Process, error) {
	ctr, ok := p.container(container)
	if !ok {
		return nil, fmt.Errorf("pod %s has no container %s", p.Name, container)
	}
	argv := append(append([]string{}, ctr.Command...), ctr.Args...)
	cmd, logFile, err := p.command(ctx, ctr, argv, extraEnv, container)
	if err != nil {
		return nil, err
	}
	info, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer info.Close()
	cmd.ExtraFiles = []*os.File{w} // fd 3: bwrap --info-fd 3 writes {"child-pid": N}
	cmd.Args = append(cmd.Args[:1], append([]string{"--info-fd", "3"}, cmd.Args[1:]...)...)
	pr := &Process{Cmd: cmd, Log: logFile, done: make(chan struct{})}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return nil, err
	}
	go func() { pr.err = cmd.Wait(); close(pr.done) }()
	var started struct {
		ChildPid int `json:"child-pid"`
	}
	if err := json.NewDecoder(info).Decode(&started); err != nil {
		<-pr.done
		out, _ := os.ReadFile(logFile)
		return nil, fmt.Errorf("pod %s container %s did not start: %s", p.Name, container, out)
	}
	pr.pid = started.ChildPid
	p.mu.Lock()
	p.running[container] = pr
	p.mu.Unlock()
	return pr, nil
}

// Run runs a container (an init container, a Job's container) to its end, at most timeout, and
// returns its output; an error if it failed or did not end.
func (p *Pod) Run(ctx context.Context, container string, extraEnv map[string]string, timeout time.Duration) (string, error) {
	pr, err := p.Start(ctx, container, extraEnv)
	if err != nil {
		return "", err
	}
	exited, err := pr.Wait(timeout)
	if !exited {
		pr.Stop(time.Second)
		err = fmt.Errorf("did not end within %s", timeout)
	}
	out, _ := os.ReadFile(pr.Log)
	if err != nil {
		return string(out), fmt.Errorf("pod %s container %s: %w\n%s", p.Name, container, err, out)
	}
	return string(out), nil
}

// Exec runs argv inside a container of the pod, as `kubectl exec` does (the container's
// environment, mounts and user), and returns its combined output.
func (p *Pod) Exec(ctx context.Context, container string, timeout time.Duration, argv ...string) (string, error) {
	ctr, ok := p.container(container)
	if !ok {
		return "", fmt.Errorf("pod %s has no container %s", p.Name, container)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd, logFile, err := p.command(ctx, ctr, argv, nil, container+"-exec")
	if err != nil {
		return "", err
	}
	err = cmd.Run()
	out, _ := os.ReadFile(logFile)
	return string(out), err
}

// Probe runs an exec probe of a container (startup, liveness or readiness) once.
func (p *Pod) Probe(ctx context.Context, container string, probe *corev1.Probe) error {
	if probe == nil || probe.Exec == nil {
		return fmt.Errorf("pod %s container %s: not an exec probe", p.Name, container)
	}
	timeout := time.Duration(probe.TimeoutSeconds) * time.Second
	if timeout == 0 {
		timeout = time.Second
	}
	out, err := p.Exec(ctx, container, timeout+5*time.Second, probe.Exec.Command...)
	if err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(out))
	}
	return nil
}

// Running is the running process of a container, if any.
func (p *Pod) Running(container string) *Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running[container]
}

// Stop stops every running container of the pod (SIGTERM, then SIGKILL after grace).
func (p *Pod) Stop(grace time.Duration) {
	p.mu.Lock()
	procs := p.running
	p.running = map[string]*Process{}
	p.mu.Unlock()
	for _, pr := range procs {
		pr.Stop(grace)
	}
}

// Kill ends every container of the pod at once (SIGKILL): a node that disappears.
func (p *Pod) Kill() {
	p.mu.Lock()
	procs := p.running
	p.running = map[string]*Process{}
	p.mu.Unlock()
	for _, pr := range procs {
		pr.Signal(syscall.SIGKILL)
		_, _ = pr.Wait(10 * time.Second)
	}
}

var varRef = regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

// expand applies the kubelet's $(VAR) expansion: defined variables are replaced, $$ is a $,
// anything else is left as written.
func expand(s string, env map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		if v, ok := env[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// environment resolves a container's env as the kubelet does, in order.
func (p *Pod) environment(ctr corev1.Container) (map[string]string, []string, error) {
	env := map[string]string{"HOSTNAME": p.Name}
	order := []string{"HOSTNAME"}
	set := func(k, v string) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			set(e.Name, expand(e.Value, env))
		case e.ValueFrom.FieldRef != nil:
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				set(e.Name, p.Name)
			case "metadata.namespace":
				set(e.Name, p.cluster.Namespace)
			case "status.podIP":
				set(e.Name, p.IP)
			default:
				return nil, nil, fmt.Errorf("env %s: field %s is not emulated", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			v, ok := p.cluster.ConfigMaps[ref.Name][ref.Key]
			if !ok {
				return nil, nil, fmt.Errorf("env %s: ConfigMap %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			set(e.Name, v)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := p.cluster.Secrets[ref.Name][ref.Key]
			if !ok {
				return nil, nil, fmt.Errorf("env %s: Secret %s has no key %s (the test creates the Secrets External Secrets would)", e.Name, ref.Name, ref.Key)
			}
			set(e.Name, v)
		default:
			return nil, nil, fmt.Errorf("env %s: this valueFrom is not emulated", e.Name)
		}
	}
	return env, order, nil
}

// command builds the bwrap command line of a container.
func (p *Pod) command(ctx context.Context, ctr corev1.Container, argv []string, extraEnv map[string]string, logName string) (*exec.Cmd, string, error) {
	img, ok := p.cluster.Images[ctr.Image]
	if !ok {
		return nil, "", fmt.Errorf("image %s: the test does not say what stands in for it here", ctr.Image)
	}
	env, order, err := p.environment(ctr)
	if err != nil {
		return nil, "", fmt.Errorf("pod %s container %s: %w", p.Name, ctr.Name, err)
	}
	order = addEnv(env, order, img.Env)
	order = addEnv(env, order, extraEnv)
	uid, gid := p.runAs(ctr)
	passwd, group, err := p.cluster.identity(img.User, uid, gid)
	if err != nil {
		return nil, "", err
	}
	mounts, err := p.mounts(ctr)
	if err != nil {
		return nil, "", err
	}
	// Everything mounted inside the sandbox; under /usr and /etc (the host's, read-only) the
	// folders on the way to such a mount point are rebuilt from the host's entries, so that the
	// mount point can be created (bwrap cannot create it inside a read-only bind).
	binds := [][3]string{{"--ro-bind", p.cluster.HostsFile(), "/etc/hosts"}, {"--ro-bind", passwd, "/etc/passwd"}, {"--ro-bind", group, "/etc/group"}}
	imgBinds, path := imageBinds(img)
	binds = append(append(binds, imgBinds...), mounts...)
	var targets []string
	for _, b := range binds {
		targets = append(targets, b[2])
	}
	args := []string{
		"--unshare-user", "--uid", fmt.Sprint(uid), "--gid", fmt.Sprint(gid),
		"--unshare-pid", "--as-pid-1", "--unshare-ipc", "--unshare-uts", "--hostname", p.Name, "--die-with-parent",
	}
	args = append(args, hostTree("/usr", targets)...)
	args = append(args, hostTree("/etc", targets)...)
	args = append(args, "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
		"--proc", "/proc", "--dev", "/dev", "--clearenv")
	for _, b := range binds {
		args = append(args, b[0], b[1], b[2])
	}
	args = append(args, "--remount-ro", "/")
	for _, k := range order {
		args = append(args, "--setenv", k, env[k])
	}
	// The stand-ins (never the scripts) learn the pod's own address from PODRUN_POD_IP: in a real
	// pod it is the address of the pod's own network namespace.
	pathEnv := strings.Join(append(path, "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"), ":")
	args = append(args, "--setenv", "PATH", pathEnv, "--setenv", "PODRUN_POD_IP", p.IP, "--")
	for _, a := range argv {
		args = append(args, expand(a, env))
	}
	return p.logged(ctx, args, logName)
}

// addEnv sets every variable of extra in env (order lists env's names in the order they are
// set; a new name goes last) and returns the new order.
func addEnv(env map[string]string, order []string, extra map[string]string) []string {
	for k, v := range extra {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	return order
}

// runAs is the user and group a container runs as: its securityContext's, else the pod's, else
// root (0, 0).
func (p *Pod) runAs(ctr corev1.Container) (uid, gid int64) {
	if sc := p.Template.Spec.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = *sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = *sc.RunAsGroup
		}
	}
	if sc := ctr.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = *sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = *sc.RunAsGroup
		}
	}
	return uid, gid
}

// imageBinds is what a stand-in image mounts (flag, host path, sandbox path), in a fixed order,
// and its PATH folders as the sandbox sees them. Stand-in folders outside /usr appear at fixed
// places: a checkout under /tmp would otherwise be hidden by a pod's own /tmp volume.
func imageBinds(img Image) (binds [][3]string, path []string) {
	for i, dir := range img.Path {
		if strings.HasPrefix(dir, "/usr/") {
			path = append(path, dir)
			continue
		}
		in := fmt.Sprintf("/opt/podrun/path%d", i)
		binds = append(binds, [3]string{"--ro-bind", dir, in})
		path = append(path, in)
	}
	for _, in := range slices.Sorted(maps.Keys(img.Bind)) {
		binds = append(binds, [3]string{"--ro-bind", img.Bind[in], in})
	}
	for _, in := range slices.Sorted(maps.Keys(img.Writable)) {
		binds = append(binds, [3]string{"--bind", img.Writable[in], in})
	}
	return binds, path
}

// logged is the bwrap command with args, its output going to a new file under the cluster's
// logs/ (returned), in its own process group that a cancelled ctx kills.
func (p *Pod) logged(ctx context.Context, args []string, logName string) (*exec.Cmd, string, error) {
	logDir := filepath.Join(p.cluster.Dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, "", err
	}
	logFile := filepath.Join(logDir, fmt.Sprintf("%s-%s-%d.log", p.Name, logName, time.Now().UnixNano()))
	f, err := os.Create(logFile)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.CommandContext(ctx, "bwrap", args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) } // --die-with-parent ends the rest
	return cmd, logFile, nil
}

// mounts turns a container's volumeMounts into bwrap binds (flag, host path, sandbox path),
// writing ConfigMap and Secret volumes out and creating emptyDirs and claims as needed. Without a
// volume at /tmp, /tmp is a folder of the read-only root, as in a container with
// readOnlyRootFilesystem.
func (p *Pod) mounts(ctr corev1.Container) ([][3]string, error) {
	vols := map[string]corev1.Volume{}
	for _, v := range p.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	var out [][3]string
	for _, m := range ctr.VolumeMounts {
		src, err := p.volume(m.Name, vols)
		if err != nil {
			return nil, fmt.Errorf("pod %s container %s: %w", p.Name, ctr.Name, err)
		}
		if m.SubPath != "" {
			src = filepath.Join(src, m.SubPath)
		}
		bind := "--bind"
		if m.ReadOnly {
			bind = "--ro-bind"
		}
		out = append(out, [3]string{bind, src, m.MountPath})
	}
	return out, nil
}

// hostTree binds the host's folder root read-only into the sandbox. Where a target lies below it
// at a path the host does not have, the folders on the way are made in the sandbox and the
// host's entries beside them bound one by one, so that bwrap can create the target there.
func hostTree(root string, targets []string) []string {
	var needs []string
	for _, t := range targets {
		if strings.HasPrefix(t, root+"/") {
			if _, err := os.Lstat(t); err != nil {
				needs = append(needs, t)
			}
		}
	}
	if len(needs) == 0 {
		return []string{"--ro-bind", root, root}
	}
	args := []string{"--dir", root}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		path := filepath.Join(root, e.Name())
		below := false
		for _, n := range needs {
			below = below || strings.HasPrefix(n, path+"/")
		}
		switch {
		case below && e.IsDir():
			args = append(args, hostTree(path, needs)...)
		case e.Type()&os.ModeSymlink != 0:
			if dest, err := os.Readlink(path); err == nil {
				args = append(args, "--symlink", dest, path)
			}
		default:
			args = append(args, "--ro-bind", path, path)
		}
	}
	return args
}

func (p *Pod) volume(name string, vols map[string]corev1.Volume) (string, error) {
	base := filepath.Join(p.cluster.Dir, "pods", p.Name, "volumes", name)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.written[name] {
		return base, nil
	}
	v, ok := vols[name]
	if !ok {
		// A volumeClaimTemplate of the StatefulSet.
		return p.Claim(name)
	}
	switch {
	case v.EmptyDir != nil:
		return base, os.MkdirAll(base, 0o777)
	case v.ConfigMap != nil, v.Secret != nil:
		kind, source, items, all := "ConfigMap", "", []corev1.KeyToPath(nil), p.cluster.ConfigMaps
		if v.ConfigMap != nil {
			source, items = v.ConfigMap.Name, v.ConfigMap.Items
		} else {
			kind, source, items, all = "Secret", v.Secret.SecretName, v.Secret.Items, p.cluster.Secrets
		}
		data, ok := all[source]
		if !ok {
			return "", fmt.Errorf("volume %s: no %s %s", name, kind, source)
		}
		p.written[name] = true
		return base, writeVolume(base, data, items)
	case v.PersistentVolumeClaim != nil:
		return p.cluster.Claim(v.PersistentVolumeClaim.ClaimName)
	}
	return "", fmt.Errorf("volume %s: this kind of volume is not emulated", name)
}

func writeVolume(dir string, data map[string]string, items []corev1.KeyToPath) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if len(items) == 0 {
		for k := range data {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("no key %s", it.Key)
		}
		f := filepath.Join(dir, it.Path)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f, []byte(v), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Available says why bwrap cannot run sandboxes here, or "" when it can.
func Available() string {
	if _, err := exec.LookPath("bwrap"); err != nil {
		return "bubblewrap (bwrap) is not installed"
	}
	out, err := exec.Command("bwrap", "--unshare-user", "--ro-bind", "/", "/", "true").CombinedOutput()
	if err != nil {
		return "bwrap cannot create a user namespace here: " + strings.TrimSpace(string(out))
	}
	return ""
}
