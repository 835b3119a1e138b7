package realnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tempHost points the package's host paths (lock, state, /proc/sys) at a temporary folder for
// one test: a test never touches the machine's real lock or kernel settings.
func tempHost(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	oldLock, oldProc := lockPath, procSys
	lockPath, procSys = filepath.Join(dir, "cloudlab-realnode.lock"), filepath.Join(dir, "proc-sys")
	t.Cleanup(func() { lockPath, procSys = oldLock, oldProc })
	return dir
}

// A second run waits for the lock, says for whom, and gives up as soon as its context ends
// (^C, SIGTERM), not after the 15 minutes it would otherwise wait.
func TestLockWaitsForItsHolderAndGivesUpWhenCancelled(t *testing.T) {
	tempHost(t)
	first, err := Lock(context.Background(), time.Minute, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var said []string
	start := time.Now()
	second, err := Lock(ctx, 15*time.Minute, func(f string, a ...any) { said = append(said, fmt.Sprintf(f, a...)) })
	if second != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock while held and cancelled: %v, %v; want the context's error", second, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Lock took %s to notice its context had ended", took)
	}
	if len(said) != 1 || !strings.Contains(said[0], fmt.Sprintf("held by pid %d", os.Getpid())) {
		t.Fatalf("Lock said %q, want once for whom it waits", said)
	}
	Unlock(first)
	third, err := Lock(context.Background(), time.Second, t.Logf)
	if err != nil {
		t.Fatalf("the lock is free again, yet: %v", err)
	}
	Unlock(third)
}
