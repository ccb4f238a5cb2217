package actors

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/coterie-mpc/coterie/protocol"
)

// maxDetail bounds the description of a request in the audit log (the
// cluster's own bound is 512 bytes).
const maxDetail = 500

// requestDetail describes what a request asks for the audit log: a
// transaction's operation, asset, amount, source and destinations, or a
// config change's type. It holds nothing secret: the workspace shows the
// same to every approver.
func requestDetail(r *protocol.WsRequest) string {
	var b strings.Builder
	if t := r.GetTransaction(); t != nil {
		op := t.GetOperation()
		if op == "" {
			op = "TRANSFER"
		}
		fmt.Fprintf(&b, "%s %s %s from %s", op, t.GetAmount(), t.GetAsset(), peer(t.GetSource()))
		for _, d := range t.GetDestinations() {
			fmt.Fprintf(&b, "; %s to %s", d.GetAmount(), peer(d.GetPeer()))
		}
		if len(t.GetDigests()) > 0 {
			fmt.Fprintf(&b, "; %d digests", len(t.GetDigests()))
		}
	} else if c := r.GetConfigChange(); c != nil {
		b.WriteString(strings.TrimPrefix(c.GetType().String(), "WS_CONFIG_CHANGE_TYPE_"))
	}
	return cut(b.String(), maxDetail)
}

func peer(p *protocol.WsPeer) string {
	s := p.GetType()
	if p.GetId() != "" {
		s += ":" + p.GetId()
	}
	if p.GetAddress() != "" {
		s += ":" + p.GetAddress()
	}
	return s
}

// cut shortens s to at most n bytes on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// maxDecisionReason bounds a handler's reason in the audit log, below the
// cluster's bound on a command's reason (1024 bytes): the handler's reason
// may hold 512 runes of up to 4 bytes.
const maxDecisionReason = 1000
