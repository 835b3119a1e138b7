package realnode

import (
	"reflect"
	"testing"
)

func repoCatalog(t *testing.T) *Catalog {
	t.Helper()
	c, err := LoadCatalog("../../..", "cloudlab")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// seenAsExpected is what a correct run observes: every allowed connection "ok", every other
// one dropped ("timeout").
func seenAsExpected(exp []Expectation) map[string]string {
	seen := map[string]string{}
	for _, e := range exp {
		seen[e.Key()] = map[bool]string{true: "ok", false: "timeout"}[e.Connect]
	}
	return seen
}

// The catalog (services/*/values.yaml) gives the matrix the issue describes: 12 services, 132
// ordered pairs, 9 calls between services, 9 public services.
func TestExpectationsFromTheCatalog(t *testing.T) {
	c := repoCatalog(t)
	exp, problems := c.Expectations(18080)
	if len(problems) > 0 {
		t.Fatalf("catalog inconsistent: %v", problems)
	}
	if len(c.Services) != 12 {
		t.Fatalf("%d services, want 12: %v", len(c.Services), c.Services)
	}
	pairs, calls, public := 0, 0, 0
	for _, e := range exp {
		switch {
		case e.From != Gateway && e.From != "prometheus" && e.From != Unlabelled && e.To != Outside && e.Port == c.HTTPPort:
			pairs++
			if e.Connect {
				calls++
			}
		case e.From == Gateway && e.Port == c.HTTPPort && e.Connect:
			public++
		}
	}
	if pairs != 132 || calls != 9 || public != 9 {
		t.Fatalf("pairs %d calls %d public %d, want 132, 9, 9", pairs, calls, public)
	}
	if got := Judge(exp, seenAsExpected(exp)); len(got) != 0 {
		t.Fatalf("a run that saw exactly the catalog was judged wrong: %v", got)
	}
}

// The fixture of the issue: a NetworkPolicy rule that opens an undeclared call (payment -> user)
// makes the check fail, naming the pair; a declared call that is dropped fails too.
func TestJudgeNamesTheWrongPair(t *testing.T) {
	c := repoCatalog(t)
	exp, _ := c.Expectations(18080)
	seen := seenAsExpected(exp)
	seen["payment -> user:8080"] = "ok"
	seen["order -> cart:8080"] = "timeout"
	seen["prometheus -> search:9090"] = "refused"
	want := []string{
		"order -> cart:8080: timeout, but the catalog declares this call",
		"payment -> user:8080: connected, but the catalog has no such call",
		"prometheus -> search:9090: refused, but the catalog declares this call",
	}
	if got := Judge(exp, seen); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	delete(seen, "gateway -> analytics:8080")
	if got := Judge(exp, seen); len(got) != 4 || got[0] != "gateway -> analytics:8080: not probed" {
		t.Fatalf("a connection that was not probed must fail: %q", got)
	}
}

// A call declared on one side only is a catalog error the check reports.
func TestOneSidedCallIsReported(t *testing.T) {
	c := repoCatalog(t)
	c.Calls["payment"] = append(c.Calls["payment"], "user")
	exp, problems := c.Expectations(18080)
	if len(problems) != 1 || problems[0] != "catalog: payment calls true user, but user calledBy false payment" {
		t.Fatalf("problems %q", problems)
	}
	for _, e := range exp {
		if e.Key() == "payment -> user:8080" && e.Connect {
			t.Fatal("a one-sided call must be expected dropped (both policies must open it)")
		}
	}
}
