// Package callback speaks the callback-handler protocol (v2) of the
// co-signer: before a Coterie node signs a transaction or approves a
// config change for an API user, it asks the customer's callback handler.
//
// The package holds four things:
//
//   - the payload types, TxRequest and ConfigChangeRequest, and the answer
//     a handler gives, a Decision;
//   - the JWT codec: requests are RS256 tokens signed with the node's
//     callback key, and responses are RS256 or ES256 tokens signed with the
//     handler's key (EncodeRequest, DecodeRequest, EncodeResponse,
//     DecodeResponse);
//   - the HTTP Client, whose Ask makes exactly one attempt, and the
//     Backoff that spaces attempts;
//   - the reference handler, Server, which answers from a small YAML Policy.
//
// # The protocol
//
// A request is POSTed to {base}/v2/tx_sign_request or
// {base}/v2/config_change_sign_request. Its body is a compact JWT whose
// claims are the request's fields plus iat and exp; an amount the request
// does not give is null, never 0. The handler answers 200 with a JWT whose
// claims are action (APPROVE, REJECT, RETRY, or IGNORE for config changes
// only), requestId (which must equal the request's), rejectionReason and
// iat, which must be recent (Config.MaxAnswerAge) so that a recorded
// answer cannot be played back later; Config.AllowAnswersWithoutIAT
// accepts handlers that cannot send it.
//
// Coterie extends v2 with one optional claim, requestTokenHash: the hash
// of the request token the answer is for (RequestTokenHash). The reference
// Server always sends it; a node with Config.RequireRequestTokenHash
// refuses answers without it, and any answer that carries it must carry
// the right one, so an answer given to one request token cannot be
// replayed for another ask about the same requestId. v2 handlers, which
// do not send it, keep working by default.
//
// # Safety
//
// Invariant I5 of DESIGN.md: when a handler is configured, nothing is
// signed or approved without its APPROVE. Every failure to obtain one (a
// timeout, an unreachable handler, an HTTP error, a bad signature, a
// refused algorithm, an expired or stale token, a mismatched requestId or
// requestTokenHash, an action the request kind does not allow) is returned as an error wrapping one of
// the sentinel errors in errors.go, and never as an approving Decision.
// A Client with no handler URL approves automatically, as the seed product
// does; its Decisions say so (Decision.Auto).
//
// Errors and log lines never carry key material or whole tokens.
//
// # Time
//
// Everything that reads the time or waits takes a clock.Clock, so tests drive
// timeouts and backoff with a clock.Fake instead of sleeping.
//
// # For actors
//
// Client.Ask blocks for at most Config.Timeout (on the Clock) and does no
// retrying, so an actor runs it off its mailbox and, on a RETRY answer or
// an error for which Retryable reports true, asks Config.Retry.Next for
// the delay before the next attempt. The retry loop lives in one place
// only, the node's callback actor; once the budget is spent it reports
// ErrBudgetExhausted.
package callback
