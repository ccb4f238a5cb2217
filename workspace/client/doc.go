// Package client is the Go client of the workspace: what a Coterie node
// (issue 5) uses to pair, to receive requests, to run MPC sessions through
// the relay and to report outcomes, and what the `coterie workspace` command
// line uses as the operator.
//
// # A co-signer node
//
//	creds, resp, err := client.Pair(ctx, client.PairConfig{
//		Token: tokenString, ApprovalKey: approvalPub, CallbackKey: callbackPub,
//	})
//	// store creds encrypted (creds.MarshalBinary holds the client key)
//	c, err := client.Dial(creds)
//	share, key, err := c.Keygen(ctx, engine, resp) // signer roles, once
//
//	stream, err := c.Poll(ctx, &protocol.WsPollRequest{Cursor: cursor})
//	for { ev, err := stream.Recv(); ...; cursor = ev.Cursor } // reconnect with cursor
//
//	pre, err := c.Presign(ctx, engine, share, key)           // into the node's PresignStore
//	res, err := c.Sign(ctx, engine, share, key, store, id, req, 0)
//	// res.Recorded: the workspace verified and recorded the signature.
//	_, err = c.Approve(ctx, req, approvalPriv)                // config changes
//	_, err = c.RejectRequest(ctx, &protocol.WsRejectRequest{RequestId: id, Reason: why})
//
// Relay runs any session given its start message and the node's own
// mpc.Machine; Keygen, Presign, Sign and Refresh wrap it with the parameters
// pairing fixed. If a relay stream breaks after the node's session finished
// a signature, the node may still complete the request with
// SubmitSignature; the workspace answers a duplicate idempotently.
//
// # The operator
//
// DialAdmin finds the server through the workspace's data directory, which
// holds the address, the CA certificate and the admin credential.
//
// Clients are safe for concurrent use, as gRPC clients are.
package client
