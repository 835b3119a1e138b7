package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ControlPlane is a real Kubernetes control plane on loopback: etcd (embedded), kube-apiserver,
// kube-controller-manager and kube-scheduler built from k8s.io/kubernetes, and KWOK, which plays
// the kubelets of the simulated nodes (it marks their pods running and ready).
type ControlPlane struct {
	dir        string
	etcd       *embed.Etcd
	procs      []*exec.Cmd
	Config     *rest.Config
	Client     kubernetes.Interface
	Dynamic    dynamic.Interface
	Kubeconfig string
	APIPort    int
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartControlPlane starts everything in dir; logs of each process go to dir/<name>.log.
// advertise, when set, is the address the API server publishes in the kubernetes Service (a real
// node's pods reach it there) while it listens on loopback only.
func StartControlPlane(ctx context.Context, dir, binDir, kwok, kwokStages, advertise string) (*ControlPlane, error) {
	cp := &ControlPlane{dir: dir}
	ok := false
	defer func() {
		if !ok {
			cp.Stop()
		}
	}()
	etcdURL, err := cp.startEtcd()
	if err != nil {
		return nil, err
	}
	creds, err := writeCredentials(dir)
	if err != nil {
		return nil, err
	}
	if err := cp.startAPIServer(ctx, binDir, etcdURL, advertise, creds); err != nil {
		return nil, err
	}
	if err := cp.startControllers(binDir, kwok, kwokStages, creds); err != nil {
		return nil, err
	}
	ok = true
	return cp, nil
}

// startEtcd starts etcd embedded: one member, loopback only; it returns its client URL.
func (cp *ControlPlane) startEtcd() (string, error) {
	clientPort, err := freePort()
	if err != nil {
		return "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return "", err
	}
	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(cp.dir, "etcd")
	cu, _ := url.Parse("http://127.0.0.1:" + strconv.Itoa(clientPort))
	pu, _ := url.Parse("http://127.0.0.1:" + strconv.Itoa(peerPort))
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(cp.dir, "etcd.log")}
	if cp.etcd, err = embed.StartEtcd(cfg); err != nil {
		return "", fmt.Errorf("etcd: %w", err)
	}
	select {
	case <-cp.etcd.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		return "", fmt.Errorf("etcd did not become ready")
	}
	return cu.String(), nil
}

// credentials are the files of the control plane's identities in its folder.
type credentials struct {
	keyFile, pubFile string // the service-account signing key (RSA, PEM) and its public key
	tokenFile, token string // the API server's token file and its one admin token (system:masters)
}

// writeCredentials writes a new service-account signing key and an admin token into dir.
func writeCredentials(dir string) (credentials, error) {
	c := credentials{keyFile: filepath.Join(dir, "sa.key"), pubFile: filepath.Join(dir, "sa.pub"), tokenFile: filepath.Join(dir, "tokens.csv")}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return c, err
	}
	if err := os.WriteFile(c.keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return c, err
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err := os.WriteFile(c.pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		return c, err
	}
	tokenBytes := make([]byte, 16)
	_, _ = rand.Read(tokenBytes)
	c.token = hex.EncodeToString(tokenBytes)
	return c, os.WriteFile(c.tokenFile, []byte(c.token+`,admin,admin,"system:masters"`+"\n"), 0o600)
}

// startAPIServer starts kube-apiserver on a free loopback port against etcdURL, waits for its
// /readyz, sets cp's clients and writes cp.Kubeconfig for the other components.
func (cp *ControlPlane) startAPIServer(ctx context.Context, binDir, etcdURL, advertise string, creds credentials) error {
	apiPort, err := freePort()
	if err != nil {
		return err
	}
	cp.APIPort = apiPort
	var nodeArgs []string
	if advertise != "" {
		nodeArgs = []string{"--advertise-address=" + advertise, "--kubelet-preferred-address-types=InternalIP"}
	}
	if err := cp.run("kube-apiserver", filepath.Join(binDir, "kube-apiserver"), append(nodeArgs,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(apiPort), "--cert-dir="+cp.certDir(),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+creds.pubFile, "--service-account-signing-key-file="+creds.keyFile,
		"--token-auth-file="+creds.tokenFile, "--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.96.0.0/16", "--allow-privileged=false",
		// The admission plugins of a real cluster stay on (Pod Security, ResourceQuota, LimitRanger...).
	)...); err != nil {
		return err
	}
	cp.Config = &rest.Config{
		Host: "https://127.0.0.1:" + strconv.Itoa(apiPort), BearerToken: creds.token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 200, Burst: 400,
	}
	if cp.Client, err = kubernetes.NewForConfig(cp.Config); err != nil {
		return err
	}
	if cp.Dynamic, err = dynamic.NewForConfig(cp.Config); err != nil {
		return err
	}
	if err := waitFor(ctx, 90*time.Second, "kube-apiserver /readyz", func() (bool, error) {
		body, err := cp.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	}); err != nil {
		return err
	}
	cp.Kubeconfig = filepath.Join(cp.dir, "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: sim, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: %q}}]
contexts: [{name: sim, context: {cluster: sim, user: admin}}]
current-context: sim
`, cp.Config.Host, creds.token)
	return os.WriteFile(cp.Kubeconfig, []byte(kc), 0o600)
}

// certDir is where kube-apiserver writes its self-signed serving certificate.
func (cp *ControlPlane) certDir() string { return filepath.Join(cp.dir, "pki") }

// startControllers starts kube-controller-manager, kube-scheduler and KWOK (the simulated
// nodes' kubelets, with the stages in kwokStages) against the running API server.
func (cp *ControlPlane) startControllers(binDir, kwok, kwokStages string, creds credentials) error {
	cmPort, _ := freePort()
	if err := cp.run("kube-controller-manager", filepath.Join(binDir, "kube-controller-manager"),
		"--kubeconfig="+cp.Kubeconfig, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(cmPort),
		"--service-account-private-key-file="+creds.keyFile, "--root-ca-file="+filepath.Join(cp.certDir(), "apiserver.crt"),
		"--use-service-account-credentials=false", "--controllers=*",
		// Keep few finished pods (backup Jobs); a lost node's pods are deleted by LoseZone itself.
		"--terminated-pod-gc-threshold=100",
	); err != nil {
		return err
	}
	schedPort, _ := freePort()
	if err := cp.run("kube-scheduler", filepath.Join(binDir, "kube-scheduler"),
		"--kubeconfig="+cp.Kubeconfig, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(schedPort),
	); err != nil {
		return err
	}
	kwokPort, _ := freePort()
	return cp.run("kwok", kwok,
		"--kubeconfig="+cp.Kubeconfig, "--config="+kwokStages,
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--node-ip=127.0.0.1", "--server-address=127.0.0.1:"+strconv.Itoa(kwokPort),
		"--cidr=10.244.0.0/16",
		// Node Leases are the heartbeat the node lifecycle controller watches (stage node-heartbeat-with-lease).
		"--node-lease-duration-seconds=40",
	)
}

func (cp *ControlPlane) run(name, bin string, args ...string) error {
	logFile, err := os.Create(filepath.Join(cp.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	cp.procs = append(cp.procs, cmd)
	go func() { _ = cmd.Wait(); logFile.Close() }()
	return nil
}

// Stop ends every process (last started first) and etcd.
func (cp *ControlPlane) Stop() {
	for i := len(cp.procs) - 1; i >= 0; i-- {
		if p := cp.procs[i].Process; p != nil {
			_ = p.Kill()
		}
	}
	if cp.etcd != nil {
		cp.etcd.Close()
	}
}

// waitFor polls cond every 500ms until it holds or the timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, err := cond()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not done after %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
