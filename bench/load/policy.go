package load

// Policy is the reference callback handler's policy (callback.Policy, YAML)
// that the mix's shares rest on: transactions above RejectAmount ETH are
// rejected, those whose note holds RetryNote are answered RETRY once, and
// every config change the mix submits is approved.
const Policy = `transactions:
  maxAmount:
    ETH: "100"
  allowedDestinations:
    - "` + Destination + `"
configChanges:
  "*": approve
retry:
  - times: 1
    noteContains: "` + RetryNote + `"
`

const (
	// Destination is every transaction's destination, on Policy's
	// allowlist.
	Destination = "0x00000000000000000000000000000000000b3c4"
	// RetryNote marks a transaction the handler answers RETRY once.
	RetryNote = "retry-once"
	// RejectAmount is over Policy's limit.
	RejectAmount = "1000"
)
