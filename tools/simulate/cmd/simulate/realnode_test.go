package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The real node tags the podinfo it built with dev's image reference only when the versions
// agree: a fake podinfo printing another version is refused, naming both.
func TestPodinfoVersionMustMatchDev(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\necho 6.9.2\n"
	if err := os.WriteFile(filepath.Join(dir, "podinfo"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkPodinfoVersion(dir, "ghcr.io/stefanprodan/podinfo:6.9.2"); err != nil {
		t.Fatalf("same version refused: %v", err)
	}
	err := checkPodinfoVersion(dir, "ghcr.io/stefanprodan/podinfo:6.9.3")
	if err == nil || !strings.Contains(err.Error(), "dev deploys ghcr.io/stefanprodan/podinfo:6.9.3, but the real node's podinfo is 6.9.2") {
		t.Fatalf("a different version must be refused, naming both: %v", err)
	}
}

// within fails the test if f has not returned after d (it would hang the run).
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %s: the run would never exit", what, d)
	}
}

// The second of two concurrent runs gets no node: Start returns nil and an error (the lock
// was not free after 15 minutes, or runc is missing). The run reads that result for its report;
// its clean-up must then return, not wait for a second result that never comes.
func TestFailedStartDoesNotHangTheRun(t *testing.T) {
	ch := make(chan nodeResult, 1)
	ch <- nodeResult{err: errors.New("another real node holds /run/lock/cloudlab-realnode.lock after waiting 15m0s")}
	p := &pendingNode{ch: ch}
	if res := p.result(); res.err == nil || res.node != nil {
		t.Fatalf("result %+v, want the start's error and no node", res)
	}
	within(t, 5*time.Second, "the clean-up after a failed start", func() { p.stop() })
	if res := p.result(); res.err == nil {
		t.Fatal("a second look at the result lost the error")
	}
}

// A run that ends early (an error in the simulated part, ^C) while the real node is still
// starting, e.g. waiting for another run's lock, cancels the start instead of waiting for it.
func TestEarlyEndCancelsTheStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan nodeResult, 1)
	go func() { <-ctx.Done(); ch <- nodeResult{err: ctx.Err()} }() // a start that waits until cancelled
	p := &pendingNode{ch: ch, cancel: cancel}
	within(t, 5*time.Second, "the clean-up while the node is still starting", func() { p.stop() })
}
