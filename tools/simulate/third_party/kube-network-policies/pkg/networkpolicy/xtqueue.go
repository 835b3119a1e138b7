// This file is not part of kube-network-policies v0.8.0: CloudLab added it to this copy
// (tools/simulate/third_party/kube-network-policies/README.md; docs/decisions/0020-real-node.md).
// Licensed under the Apache License, Version 2.0, as the rest of this package.

package networkpolicy

import (
	"encoding/binary"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

// xtQueue sends a packet to userspace queue num, as `queue num <num> [bypass]` does, but with
// the xtables NFQUEUE target (revision 3: struct xt_NFQ_info_v3 {queuenum, queues_total,
// flags}, host byte order) through nft_compat instead of the nft queue expression. A kernel
// without CONFIG_NFT_QUEUE (the test machine's) rejects the queue expression, and the
// unpatched controller then enforces nothing while staying Ready; it has xt_NFQUEUE and
// NFT_COMPAT, which give the same verdicts.
func xtQueue(num uint16, bypass bool) expr.Any {
	info := make(xt.Unknown, 6)
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], 1) // one queue
	if bypass {
		binary.NativeEndian.PutUint16(info[4:], 0x1) // NFQ_FLAG_BYPASS
	}
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}
}
