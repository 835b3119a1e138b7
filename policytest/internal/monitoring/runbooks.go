package monitoring

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

// RunbookBase is where every runbook_url points: this repository's docs/ on GitHub, at main.
const RunbookBase = "https://github.com/cloudlab/platform/blob/main/"

// CheckRunbookURL says what is wrong with a runbook_url (nil if nothing): it must point into
// docs/ of this repository at a Markdown file that exists and has a heading whose anchor is the
// URL's fragment.
func CheckRunbookURL(repoRoot, url string) error {
	rest, ok := strings.CutPrefix(url, RunbookBase)
	if !ok {
		return fmt.Errorf("runbook_url %q does not start with %s", url, RunbookBase)
	}
	path, anchor, ok := strings.Cut(rest, "#")
	if !ok || anchor == "" {
		return fmt.Errorf("runbook_url %q names no section (#anchor)", url)
	}
	if !strings.HasPrefix(path, "docs/") || !strings.HasSuffix(path, ".md") {
		return fmt.Errorf("runbook_url %q is not a Markdown file under docs/", url)
	}
	anchors, err := Anchors(filepath.Join(repoRoot, filepath.FromSlash(path)))
	if err != nil {
		return fmt.Errorf("runbook_url %q: %v", url, err)
	}
	if !anchors[anchor] {
		return fmt.Errorf("runbook_url %q: %s has no heading with anchor #%s", url, path, anchor)
	}
	return nil
}

// Anchors returns the anchors GitHub gives the headings of a Markdown file: the heading text in
// lower case, without punctuation other than '-' and '_', spaces as '-', and -1, -2... for
// repeats. Headings inside fenced code blocks do not count.
func Anchors(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]bool{}
	count := map[string]int{}
	fence := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fence = !fence
			continue
		}
		if fence || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimLeft(line, "#")
		if len(text) == 0 || text[0] != ' ' {
			continue
		}
		slug := Slug(strings.TrimSpace(text))
		if n := count[slug]; n > 0 {
			out[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			out[slug] = true
		}
		count[slug]++
	}
	return out, sc.Err()
}

// Slug is GitHub's anchor of a heading's text (see Anchors).
func Slug(text string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
