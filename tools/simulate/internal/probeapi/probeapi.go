// Package probeapi is the wire format between the real node's checks (realnode) and the probe
// program they run inside the pods (cmd/probe): JSON targets in, JSON results out. It is its own
// package so that the probe, a small static binary, does not link client-go.
package probeapi

import "time"

// Target is one thing to try.
type Target struct {
	ID       string        `json:"id"`
	Kind     string        `json:"kind"`
	Address  string        `json:"address"`
	Timeout  time.Duration `json:"timeout"`
	RetryFor time.Duration `json:"retryFor"`
}

// Result is what one target gave: Outcome is "ok", "timeout" (no answer: dropped), "refused",
// "status <code>", "dns: <error>" or "error: <error>"; Addresses are what a dns target resolved.
type Result struct {
	ID        string   `json:"id"`
	Outcome   string   `json:"outcome"`
	Addresses []string `json:"addresses,omitempty"`
	Attempts  int      `json:"attempts"`
	Millis    int64    `json:"millis"`
}

// PollResult counts the requests of a poll (`probe poll`) and the failed ones (with the first few
// errors), and the slowest request's time.
type PollResult struct {
	Requests      int      `json:"requests"`
	Failures      int      `json:"failures"`
	Errors        []string `json:"errors,omitempty"`
	SlowestMillis int64    `json:"slowestMillis"`
}
