package realnode

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/cloudlab/platform/tools/simulate/internal/probeapi"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
)

// The probe's wire format (internal/probeapi).
type (
	Target     = probeapi.Target
	Result     = probeapi.Result
	PollResult = probeapi.PollResult
)

// Exec runs a command in a container of a pod through the API server and the kubelet (as
// kubectl exec does) and returns its standard output.
func (n *Node) Exec(ctx context.Context, ns, pod, container string, stdin io.Reader, cmd ...string) ([]byte, error) {
	req := n.cfg.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdin: stdin != nil, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(n.cfg.Config, "GET", req.URL().String())
	if err != nil {
		return nil, err
	}
	spdy, err := remotecommand.NewSPDYExecutor(n.cfg.Config, "POST", req.URL())
	if err != nil {
		return nil, err
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool { return true })
	if err != nil {
		return nil, err
	}
	var out, errb bytes.Buffer
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: &out, Stderr: &errb}); err != nil {
		return out.Bytes(), fmt.Errorf("exec in %s/%s: %w: %s", ns, pod, err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// Check runs `probe check` with the targets in a pod's probe container.
func (n *Node) Check(ctx context.Context, ns, pod string, targets []Target) (map[string]Result, error) {
	arg, _ := json.Marshal(targets)
	out, err := n.Exec(ctx, ns, pod, "probe", nil, "/probe", "check", string(arg))
	if err != nil {
		return nil, err
	}
	results := map[string]Result{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("probe in %s/%s printed %q: %w", ns, pod, sc.Text(), err)
		}
		results[r.ID] = r
	}
	return results, nil
}
