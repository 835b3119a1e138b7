package rendered

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestDecodeObjectsSkipsEmptyDocuments(t *testing.T) {
	objs, err := DecodeObjects([]byte("---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\n# only a comment\n---\n{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"b\"}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].GetName() != "a" || objs[1].GetName() != "b" {
		t.Fatalf("want Namespaces a and b, got %v", objs)
	}
	if _, err := DecodeObjects([]byte("kind: [\n")); err == nil {
		t.Fatal("a broken document must be an error")
	}
}

func TestSyncOrderIsWaveThenNameRootLast(t *testing.T) {
	dir := t.TempDir()
	index := `{"cluster": "dev", "applications": [
	  {"name": "root", "wave": 0, "file": "root.yaml", "objects": 1},
	  {"name": "services", "wave": 30, "file": "services.yaml", "objects": 0},
	  {"name": "mesh", "wave": 14, "file": "mesh.yaml", "objects": 0},
	  {"name": "argocd", "wave": 1, "file": "argocd.yaml", "objects": 0},
	  {"name": "platform", "wave": 0, "file": "platform.yaml", "objects": 1}]}`
	objects := `{"root": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}}],
	  "platform": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cloudlab"}}]}`
	for name, data := range map[string]string{IndexFile: index, ObjectsFile: objects} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	apps, err := SyncOrder(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range apps {
		names = append(names, a.Name)
	}
	if want := []string{"platform", "argocd", "mesh", "services", "root"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("sync order %v, want %v", names, want)
	}
	if len(apps[0].Objects) != 1 || apps[0].Objects[0].GetName() != "cloudlab" {
		t.Fatalf("platform's objects: %v", apps[0].Objects)
	}
	if _, err := SyncOrder(t.TempDir()); err == nil {
		t.Fatal("an empty folder must be an error")
	}
}
