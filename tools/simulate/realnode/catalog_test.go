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
	exp := c.Expectations(18080)
	if len(c.Services) != 12 {
		t.Fatalf("%d services, want 12: %v", len(c.Services), c.Services)
	}
	pairs, calls, public := 0, 0, 0
	for _, e := range exp {
		_, fromService := c.Calls[e.From]
		switch {
		case fromService && e.To != Outside && !c.IsMetrics(e):
			pairs++
			if e.Connect {
				calls++
			}
		case e.From == Gateway && e.To != Outside && !c.IsMetrics(e) && e.Connect:
			public++
		}
	}
	if pairs != 132 || calls != 9 || public != 9 {
		t.Fatalf("pairs %d calls %d public %d, want 132, 9, 9", pairs, calls, public)
	}
	// notification's application port: nothing calls it and it has no public route. Every
	// metrics port has Prometheus, every other application port a caller.
	if got := Controls(exp); !reflect.DeepEqual(got, []string{"notification:8080"}) {
		t.Fatalf("controls %q, want exactly notification:8080", got)
	}
	seen := seenAsExpected(exp)
	if got := Judge(exp, seen); len(got) != 0 {
		t.Fatalf("a run that saw exactly the catalog was judged wrong: %v", got)
	}
	if conn, dropped, silent := c.Tally(exp, seen); conn != 9 || dropped != 123 || silent != 123 {
		t.Fatalf("tally %d %d %d, want 9 123 123", conn, dropped, silent)
	}
}

// The fixture of the issue: a NetworkPolicy rule that opens an undeclared call (payment -> user)
// makes the check fail, naming the pair; a declared call that is dropped fails too, and so does
// a connection that was never probed.
func TestJudgeNamesTheWrongPair(t *testing.T) {
	c := repoCatalog(t)
	exp := c.Expectations(18080)
	seen := seenAsExpected(exp)
	seen["payment -> user:8080"] = "ok"
	seen["order -> cart:8080"] = "timeout"
	seen["prometheus -> search:9090"] = "refused"
	seen["search -> outside the cluster"] = "ok"
	want := []string{
		"order -> cart:8080: timeout, but the catalog declares this call",
		"payment -> user:8080: connected, but the catalog has no such call",
		"prometheus -> search:9090: refused, but the catalog declares this call",
		"search -> outside the cluster: connected, but the catalog has no such call",
	}
	if got := Judge(exp, seen); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	delete(seen, "gateway -> analytics:8080")
	if got := Judge(exp, seen); len(got) != 5 || got[0] != "gateway -> analytics:8080: not probed" {
		t.Fatalf("a connection that was not probed must fail: %q", got)
	}
}

// A call added to the catalog changes exactly that expectation.
func TestOneCallOneExpectation(t *testing.T) {
	c := repoCatalog(t)
	before := c.Expectations(18080)
	c.Calls["payment"] = append(c.Calls["payment"], "user")
	after := c.Expectations(18080)
	var changed []string
	for i := range before {
		if before[i] != after[i] {
			changed = append(changed, after[i].Key())
		}
	}
	if !reflect.DeepEqual(changed, []string{"payment -> user:8080"}) {
		t.Fatalf("changed %q", changed)
	}
}

// A call to a service that is not in the catalog is an error, naming the file.
func TestUnknownCalleeIsAnError(t *testing.T) {
	if _, err := LoadCatalog("testdata/unknown-callee", "cloudlab"); err == nil || err.Error() != `services/a/values.yaml: calls "b", which is not in the catalog` {
		t.Fatalf("err %v", err)
	}
}

// A connection the catalog denies must time out: a NetworkPolicy drops silently. Refused (the
// packet crossed the policies and found the port closed), an HTTP status (an answer came back),
// a DNS error (nothing was sent) or unreachable each fail, naming the pair and what happened.
// And the control of a port no caller may reach must connect.
func TestADeniedConnectionMustTimeOut(t *testing.T) {
	c := repoCatalog(t)
	exp := c.Expectations(18080)
	seen := seenAsExpected(exp)
	seen["payment -> inventory:8080"] = "refused"
	seen["gateway -> notification:8080"] = "status 403"
	seen["search -> user:8080"] = "dns: lookup user.cloudlab.svc.cluster.local: no such host"
	seen["cart -> outside the cluster"] = "unreachable"
	seen["node -> notification:8080"] = "timeout"
	want := []string{
		"cart -> outside the cluster: unreachable, but a connection the catalog denies must time out (a policy drops silently): the network, not a policy, turned it away",
		"gateway -> notification:8080: status 403, but a connection the catalog denies must time out (a policy drops silently): an answer came back",
		"node -> notification:8080: timeout, but this control must connect: no caller may reach notification:8080, so without it every drop there would pass with its Service or port broken",
		"payment -> inventory:8080: refused, but a connection the catalog denies must time out (a policy drops silently): the connection crossed the policies and found the port closed",
		"search -> user:8080: dns: lookup user.cloudlab.svc.cluster.local: no such host, but a connection the catalog denies must time out (a policy drops silently): the name did not resolve, so nothing was sent",
	}
	if got := Judge(exp, seen); !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if conn, dropped, silent := c.Tally(exp, seen); conn != 9 || dropped != 123 || silent != 121 {
		t.Fatalf("tally %d %d %d, want 9 123 121", conn, dropped, silent)
	}
}
