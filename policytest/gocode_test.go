package policytest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxFunctionLines is the longest a Go function of ours may be, from its `func` line to its
// closing brace: a function that does not fit a screen does more than one thing (issue 13).
const maxFunctionLines = 80

// longFunctions lists every function declared in the .go files below root (testdata and
// third_party, vendored upstream code, left out) that is longer than max lines, as
// "<file>:<line> <name>: <n> lines", file relative to root.
func longFunctions(root string, max int) ([]string, error) {
	var out []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == "testdata" || name == "third_party" || (strings.HasPrefix(name, ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			start, end := fset.Position(fn.Pos()), fset.Position(fn.End())
			if n := end.Line - start.Line + 1; n > max {
				rel, _ := filepath.Rel(root, path)
				out = append(out, fmt.Sprintf("%s:%d %s: %d lines", rel, start.Line, fn.Name.Name, n))
			}
		}
		return nil
	})
	return out, err
}

// TestNoLongFunctions: no function in policytest/ or tools/ (the simulator, the PromQL names
// tool, the shared rendered format) is longer than maxFunctionLines.
func TestNoLongFunctions(t *testing.T) {
	for _, dir := range []string{".", "../tools"} {
		long, err := longFunctions(dir, maxFunctionLines)
		require.NoError(t, err)
		assert.Empty(t, long, "functions under %s longer than %d lines: split them", dir, maxFunctionLines)
	}
}

// TestLongFunctionsAreFound proves the measure can fail: a function of 81 lines is reported with
// its place, one of 80 is not, and nothing under testdata/ or third_party/ counts.
func TestLongFunctionsAreFound(t *testing.T) {
	dir := t.TempDir()
	body := func(name string, lines int) string { // lines counts `func` and the closing brace
		return "func " + name + "() {\n" + strings.Repeat("\t_ = 1\n", lines-2) + "}\n"
	}
	src := "package x\n\n" + body("fits", 80) + "\n" + body("tooLong", 81)
	for _, p := range []string{"x.go", "testdata/x.go", "third_party/x.go"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte(src), 0o644))
	}
	long, err := longFunctions(dir, maxFunctionLines)
	require.NoError(t, err)
	assert.Equal(t, []string{"x.go:84 tooLong: 81 lines"}, long)
}
