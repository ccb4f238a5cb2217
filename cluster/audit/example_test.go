package audit_test

import (
	"fmt"
	"time"

	"github.com/coterie-mpc/coterie/cluster/audit"
)

func Example() {
	var c audit.Chain
	at := time.Unix(1_700_000_000, 0)
	c.Append(audit.Entry{Index: 7, Time: at, Kind: audit.KindClaimed, Node: "n1", Request: "r1", APIUser: "u1"})
	c.Append(audit.Entry{Index: 8, Time: at, Kind: audit.KindDecided, Node: "n1", Request: "r1", Action: "REJECT", Reason: "over the limit", HandlerKey: "auto"})
	es := c.Entries(0, 0)
	fmt.Println(audit.Verify(c.Anchor(), es))
	es[1].Action = "APPROVE"
	fmt.Println(audit.Verify(c.Anchor(), es))
	// Output:
	// <nil>
	// audit: broken chain at entry 2: hash does not match the entry and the one before it (changed, removed or reordered)
}
