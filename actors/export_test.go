package actors

import "github.com/coterie-mpc/coterie/protocol"

// ContentDigestOf is the digest of what the callback handler is asked
// about r, as a Session records it with the handler's decision.
func ContentDigestOf(r *protocol.WsRequest) ([]byte, error) {
	req, err := callbackRequest(r)
	if err != nil {
		return nil, err
	}
	return contentDigest(req)
}
