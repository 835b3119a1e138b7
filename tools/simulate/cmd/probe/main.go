// Command probe is the image the real node's probe pods run (docs/simulate.md): it idles as the
// pod's process, and the launcher runs it again inside the pod (exec) to try connections from
// there, with the pod's labels, ServiceAccount and network namespace:
//
//	probe sleep                 idle until SIGTERM (the container's command)
//	probe check '<json>'        try every target at once; print one JSON Result per target
//	probe poll <url>            GET url every 100ms (new connection each, 10s timeout) until stdin
//	                            closes; print one JSON PollResult
//
// A target is {"id", "kind": "http"|"tcp"|"dns", "address", "timeout", "retryFor"}. http and
// tcp connect to address (a URL or host:port); dns resolves address (a name) with the pod's
// resolver. retryFor > 0 repeats a failed attempt until it succeeds or that much time passed.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cloudlab/platform/tools/simulate/internal/probeapi"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The probe's wire format (internal/probeapi).
type (
	Target     = probeapi.Target
	Result     = probeapi.Result
	PollResult = probeapi.PollResult
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe sleep | check <json targets> | poll <url>")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "sleep":
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
		<-stop
	case "check":
		var targets []Target
		if len(os.Args) != 3 || json.Unmarshal([]byte(os.Args[2]), &targets) != nil {
			fmt.Fprintln(os.Stderr, "check: want one JSON array of targets")
			os.Exit(2)
		}
		out := json.NewEncoder(os.Stdout)
		for _, r := range checkAll(targets) {
			_ = out.Encode(r)
		}
	case "poll":
		if len(os.Args) != 3 {
			fmt.Fprintln(os.Stderr, "poll: want one URL")
			os.Exit(2)
		}
		_ = json.NewEncoder(os.Stdout).Encode(poll(os.Args[2], os.Stdin))
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}

func checkAll(targets []Target) []Result {
	results := make([]Result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = check(t)
		}()
	}
	wg.Wait()
	sort.Slice(results, func(i, j int) bool { return results[i].ID < results[j].ID })
	return results
}

func check(t Target) Result {
	if t.Timeout <= 0 {
		t.Timeout = 2 * time.Second
	}
	start := time.Now()
	r := Result{ID: t.ID}
	for {
		r.Attempts++
		r.Outcome, r.Addresses = attempt(t)
		if r.Outcome == "ok" || time.Since(start)+300*time.Millisecond > t.RetryFor {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	r.Millis = time.Since(start).Milliseconds()
	return r
}

func attempt(t Target) (string, []string) {
	ctx, cancel := context.WithTimeout(context.Background(), t.Timeout)
	defer cancel()
	switch t.Kind {
	case "dns":
		addrs, err := net.DefaultResolver.LookupHost(ctx, t.Address)
		if err != nil {
			return "dns: " + err.Error(), nil
		}
		sort.Strings(addrs)
		return "ok", addrs
	case "tcp":
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", t.Address)
		if err != nil {
			return classify(err), nil
		}
		c.Close()
		return "ok", nil
	case "http":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.Address, nil)
		if err != nil {
			return "error: " + err.Error(), nil
		}
		resp, err := client.Do(req)
		if err != nil {
			return classify(err), nil
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Sprintf("status %d", resp.StatusCode), nil
		}
		return "ok", nil
	}
	return "error: unknown kind " + t.Kind, nil
}

// A fresh connection per request: a kept-alive one would hide a policy change or a rollout.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func classify(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return "dns: " + dnsErr.Error()
	case errors.Is(err, context.DeadlineExceeded), os.IsTimeout(err):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	}
	return "error: " + err.Error()
}

func poll(url string, stdin io.Reader) PollResult {
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, bufio.NewReader(stdin))
		close(done)
	}()
	var res PollResult
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		// 10s, a client's usual patience: a lost SYN (retransmitted after 1s, 3s, 7s) makes a
		// request slow, not failed; the slowest is reported.
		t0 := time.Now()
		outcome, _ := attempt(Target{Kind: "http", Address: url, Timeout: 10 * time.Second})
		res.SlowestMillis = max(res.SlowestMillis, time.Since(t0).Milliseconds())
		res.Requests++
		if outcome != "ok" {
			res.Failures++
			if len(res.Errors) < 5 {
				res.Errors = append(res.Errors, time.Now().UTC().Format("15:04:05.000")+" "+strings.TrimSpace(outcome))
			}
		}
		select {
		case <-done:
			return res
		case <-tick.C:
		}
	}
}
