package monitoring

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// RunPromtool writes the environment's rule files and copies the unit test files into dir, then
// runs `promtool check rules --lint-fatal` on the rule files named in check (all of them when
// check is nil) and `promtool test rules` on the test files, from dir (test files name their
// rule_files relative to themselves). It returns promtool's output; err is non-nil when either
// command fails. With no rule file to check and no test file, it runs nothing.
func (e *Env) RunPromtool(promtool, dir string, tests []TestFile, check []string) (string, error) {
	ruleFiles, err := e.WriteRuleFiles(dir)
	if err != nil {
		return "", err
	}
	if check != nil {
		ruleFiles = check
	}
	var testFiles []string
	for _, t := range tests {
		b, err := os.ReadFile(t.Path)
		if err != nil {
			return "", err
		}
		name := filepath.Base(t.Path)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return "", err
		}
		testFiles = append(testFiles, name)
	}
	var out bytes.Buffer
	run := func(args ...string) error {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = &out, &out
		fmt.Fprintf(&out, "$ promtool %s\n", args[0]+" "+args[1])
		return cmd.Run()
	}
	var checkErr, testErr error
	if len(ruleFiles) > 0 {
		checkErr = run(append([]string{"check", "rules", "--lint-fatal"}, ruleFiles...)...)
	}
	if len(testFiles) > 0 {
		testErr = run(append([]string{"test", "rules"}, testFiles...)...)
	}
	switch {
	case checkErr != nil:
		return out.String(), fmt.Errorf("promtool check rules: %v", checkErr)
	case testErr != nil:
		return out.String(), fmt.Errorf("promtool test rules: %v", testErr)
	}
	return out.String(), nil
}
