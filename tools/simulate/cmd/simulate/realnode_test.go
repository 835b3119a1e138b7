package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
