// Package console is the status console that every node's admin API
// serves at /: one page, its script and style sheet embedded in the
// binary (no CDN, no outside request), that polls GET /v1/console/state
// and draws the cluster's members, the API users with their pools and
// outcomes, the requests in flight, the last decisions, the failovers and
// a latency plot per signing stage.
//
// # Duties
//
//   - Authenticate people with the node's admin token through a login
//     form. A good token starts a session: a random value in a cookie
//     (HttpOnly, SameSite=Strict, Secure over TLS, Path=/), of which the
//     node keeps only a hash, an expiry and the session's CSRF token, in a
//     bounded table. The cookie never holds the admin token, and it opens
//     the console alone: every other admin endpoint still takes the bearer
//     token only.
//   - Refuse everything else: a request without a session gets the login
//     form, never data; the state JSON takes a session or the bearer
//     token. Wrong tokens are rate limited per remote address and overall
//     (429 with Retry-After), on the injected clock. Logging out changes
//     state, so it needs the session's CSRF token, and both POSTs refuse
//     cross-origin requests.
//   - Keep the rolling windows the node's state lacks (Recorder): requests
//     by outcome per user over the last hour, presignatures added per key,
//     the last decisions, the failovers (releases, and how long their
//     requests waited for a new claim) and each stage's latency over the
//     last minutes. Each is a ring of fixed size, so memory is bounded by
//     the config, not by the traffic.
//
// # What it shows
//
// State names nodes, users, requests, outcomes and reasons; it never holds
// a token, a key share, a presignature or a ciphertext. The page writes it
// with textContent only, and its Content-Security-Policy allows its own
// script and style sheet and nothing else.
//
// # Concurrency
//
// Console and Recorder are safe for concurrent use. The node feeds the
// Recorder from its subscription to the cluster's events; events are
// hints that may be dropped under load, so the windows are a view, not a
// ledger: the cluster state and the audit log are the record.
package console
