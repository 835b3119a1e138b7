package monitoring

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Exported is the set of metric names that something we deploy exports, read from the vendored
// lists of policytest/metrics/ (one file per exporter and version; README.md there says where
// each list comes from).
type Exported struct {
	names    map[string]string // name -> list file
	prefixes map[string]string // prefix (a line "prefix*") -> list file
}

var metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// LoadExported reads every *.txt of dir: one metric name a line; blank lines and lines starting
// with # are ignored; a name ending in * stands for a family whose names are made at run time
// (pg_settings_<setting>), and must be the only way such a family is listed.
func LoadExported(dir string) (*Exported, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no metric lists (*.txt) in %s", dir)
	}
	e := &Exported{names: map[string]string{}, prefixes: map[string]string{}}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		n := 0
		for sc.Scan() {
			n++
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			base := filepath.Base(f)
			if p, ok := strings.CutSuffix(line, "*"); ok {
				if !metricName.MatchString(p) {
					fh.Close()
					return nil, fmt.Errorf("%s:%d: %q is not a metric name prefix", base, n, line)
				}
				e.prefixes[p] = base
				continue
			}
			if !metricName.MatchString(line) {
				fh.Close()
				return nil, fmt.Errorf("%s:%d: %q is not a metric name", base, n, line)
			}
			e.names[line] = base
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Add declares names that exist without an exporter (recording rules' outputs).
func (e *Exported) Add(names []string, source string) {
	for _, n := range names {
		e.names[n] = source
	}
}

// Source says which list exports name ("" if none does).
func (e *Exported) Source(name string) string {
	if s, ok := e.names[name]; ok {
		return s
	}
	longest := ""
	for p := range e.prefixes {
		if strings.HasPrefix(name, p) && len(p) > len(longest) {
			longest = p
		}
	}
	if longest != "" {
		return e.prefixes[longest]
	}
	return ""
}

// Lists names the list files (sorted), for messages.
func (e *Exported) Lists() []string {
	seen := map[string]bool{}
	for _, s := range e.names {
		seen[s] = true
	}
	for _, s := range e.prefixes {
		seen[s] = true
	}
	var out []string
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Unknown checks parsed queries against the exported names and returns one message per problem:
// a query that does not parse, a metric nothing exports, or a selector without a metric name.
func (e *Exported) Unknown(parsed []Parsed) []string {
	var out []string
	for _, p := range parsed {
		if p.Error != "" {
			out = append(out, fmt.Sprintf("%s: does not parse: %s", p.ID, p.Error))
			continue
		}
		for _, m := range p.Metrics {
			if e.Source(m) == "" {
				out = append(out, fmt.Sprintf("%s: metric %s is exported by nothing we deploy (no list in policytest/metrics/ has it): fix the name, or add the exporter's list", p.ID, m))
			}
		}
		for _, u := range p.Unnamed {
			out = append(out, fmt.Sprintf("%s: selector %s names no metric, so it cannot be checked: name the metric", p.ID, u))
		}
	}
	return out
}
