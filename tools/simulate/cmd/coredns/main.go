// Command coredns is CoreDNS (github.com/coredns/coredns, the version in tools/simulate/go.mod)
// with only the plugins the real node's Corefile uses (realnode.Corefile), the documented way
// to choose plugins at build time: set dnsserver.Directives and call coremain.Run. The full
// build compiles every plugin (clouds' SDKs included) and takes ten times as long.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The order in which the plugins handle a query (a subset of CoreDNS' plugin.cfg, same order).
func init() {
	dnsserver.Directives = []string{"ready", "health", "errors", "cache", "kubernetes"}
}

func main() { coremain.Run() }
