package actors

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/request"
)

// callbackRequest turns a workspace request into what the callback
// handler is asked about (protocol v2). Errors wrap
// callback.ErrInvalidRequest.
func callbackRequest(r *protocol.WsRequest) (callback.Request, error) {
	switch r.GetKind() {
	case protocol.WsRequestKind_WS_REQUEST_KIND_TRANSACTION:
		return txRequest(r)
	case protocol.WsRequestKind_WS_REQUEST_KIND_CONFIG_CHANGE:
		return configRequest(r)
	default:
		return nil, fmt.Errorf("%w: request %s has kind %v", callback.ErrInvalidRequest, r.GetId(), r.GetKind())
	}
}

func txRequest(r *protocol.WsRequest) (*callback.TxRequest, error) {
	tx := r.GetTransaction()
	if tx == nil {
		return nil, fmt.Errorf("%w: transaction request %s has no transaction", callback.ErrInvalidRequest, r.GetId())
	}
	op := tx.GetOperation()
	if op == "" {
		op = "TRANSFER"
	}
	out := &callback.TxRequest{
		TxID: r.GetId(), Operation: op, Asset: tx.GetAsset(),
		SourceType: tx.GetSource().GetType(), SourceID: tx.GetSource().GetId(),
		Amount: decimal(tx.GetAmount()), AmountStr: tx.GetAmount(), Fee: tx.GetFee(),
		RequestID: r.GetId(), Note: tx.GetNote(), SignerID: r.GetUserId(),
		Destinations: []callback.Destination{}, RawTx: []callback.RawTx{},
	}
	for i, d := range tx.GetDestinations() {
		p := d.GetPeer()
		dest := callback.Destination{
			AmountNative: decimal(d.GetAmount()), AmountNativeStr: d.GetAmount(),
			DestAddress: p.GetAddress(), DestAddressType: addressType(p), DestID: p.GetId(), DestType: p.GetType(),
		}
		out.Destinations = append(out.Destinations, dest)
		if i == 0 {
			out.DestType, out.DestID, out.DestAddress, out.DestAddressType = dest.DestType, dest.DestID, dest.DestAddress, dest.DestAddressType
		}
	}
	for _, d := range tx.GetDigests() {
		path := append([]uint32{}, d.GetDerivationPath()...)
		out.RawTx = append(out.RawTx, callback.RawTx{KeyDerivationPath: path, Payload: hex.EncodeToString(d.GetDigest())})
	}
	return out, nil
}

// decimal is the float form protocol v2 carries next to the exact string.
// An absent or unparsable amount is nil, which the handler receives as
// null: never 0, which would pass any amount limit. The string goes to the
// handler as it is.
func decimal(s string) *float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

func addressType(p *protocol.WsPeer) string {
	if p.GetType() == "ONE_TIME_ADDRESS" {
		return "ONE_TIME"
	}
	return "WHITELISTED"
}

func configRequest(r *protocol.WsRequest) (*callback.ConfigChangeRequest, error) {
	cc := r.GetConfigChange()
	if cc == nil {
		return nil, fmt.Errorf("%w: config-change request %s has no config change", callback.ErrInvalidRequest, r.GetId())
	}
	typ, err := callback.ParseConfigChangeType(strings.TrimPrefix(cc.GetType().String(), "WS_CONFIG_CHANGE_TYPE_"))
	if err != nil {
		return nil, err
	}
	extra := map[string]any{}
	if p := payload(cc); p != nil {
		b, err := protojson.MarshalOptions{UseProtoNames: false}.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("%w: request %s: %v", callback.ErrInvalidRequest, r.GetId(), err)
		}
		if err := json.Unmarshal(b, &extra); err != nil {
			return nil, fmt.Errorf("%w: request %s: %v", callback.ErrInvalidRequest, r.GetId(), err)
		}
	}
	return &callback.ConfigChangeRequest{Type: typ, ExtraInfo: extra, RequestID: r.GetId(), SignerID: r.GetUserId()}, nil
}

// payload returns the set payload of a config change, or nil.
func payload(cc *protocol.WsConfigChange) proto.Message {
	switch p := cc.GetPayload().(type) {
	case *protocol.WsConfigChange_Exchange:
		return p.Exchange
	case *protocol.WsConfigChange_FiatAccount:
		return p.FiatAccount
	case *protocol.WsConfigChange_UnmanagedWallet:
		return p.UnmanagedWallet
	case *protocol.WsConfigChange_NetworkConnection:
		return p.NetworkConnection
	case *protocol.WsConfigChange_AddUser:
		return p.AddUser
	case *protocol.WsConfigChange_QuorumChange:
		return p.QuorumChange
	case *protocol.WsConfigChange_DeviceReEnroll:
		return p.DeviceReEnroll
	case *protocol.WsConfigChange_OneTimeAddress:
		return p.OneTimeAddress
	}
	return nil
}

// checkRequest checks the workspace's record of request id of user before
// the Session acts on it: it must be that request's and that user's, of a
// known kind, and carry what signing or approving it needs, in the shape
// the workspace itself accepts (package request's limits). A garbled record
// is never signed or approved. Errors wrap ErrMalformedRequest; they quote
// no more of the record than lengths and numbers.
func checkRequest(r *protocol.WsRequest, id, user string) error {
	if err := checkIdentity(r, id, user); err != nil {
		return err
	}
	return checkBody(r)
}

// checkIdentity checks that r is the record of request id of user.
func checkIdentity(r *protocol.WsRequest, id, user string) error {
	switch {
	case r == nil:
		return fmt.Errorf("%w: no record of request %s", ErrMalformedRequest, id)
	case r.GetId() != id:
		return fmt.Errorf("%w: asked for request %s, got the record of another request", ErrMalformedRequest, id)
	case r.GetUserId() != user:
		return fmt.Errorf("%w: request %s belongs to another API user", ErrMalformedRequest, id)
	}
	return nil
}

// checkBody checks r's kind and body.
func checkBody(r *protocol.WsRequest) error {
	switch r.GetKind() {
	case protocol.WsRequestKind_WS_REQUEST_KIND_TRANSACTION:
		tx := r.GetTransaction()
		if tx == nil {
			return fmt.Errorf("%w: transaction request %s has no transaction", ErrMalformedRequest, r.GetId())
		}
		ds := tx.GetDigests()
		if len(ds) == 0 || len(ds) > request.MaxDigests {
			return fmt.Errorf("%w: transaction request %s has %d digests, want 1 to %d", ErrMalformedRequest, r.GetId(), len(ds), request.MaxDigests)
		}
		for i, d := range ds {
			if n := len(d.GetDigest()); n != request.DigestLen {
				return fmt.Errorf("%w: request %s: digest %d is %d bytes, want %d", ErrMalformedRequest, r.GetId(), i, n, request.DigestLen)
			}
			path := d.GetDerivationPath()
			if len(path) == 0 || len(path) > request.MaxPathDepth {
				return fmt.Errorf("%w: request %s: digest %d has a derivation path of %d elements, want 1 to %d", ErrMalformedRequest, r.GetId(), i, len(path), request.MaxPathDepth)
			}
			for j, e := range path {
				if e >= request.MaxHardened {
					return fmt.Errorf("%w: request %s: digest %d: derivation path element %d is hardened", ErrMalformedRequest, r.GetId(), i, j)
				}
			}
		}
		return nil
	case protocol.WsRequestKind_WS_REQUEST_KIND_CONFIG_CHANGE:
		cc := r.GetConfigChange()
		if cc == nil {
			return fmt.Errorf("%w: config-change request %s has no config change", ErrMalformedRequest, r.GetId())
		}
		if r.GetWorkspaceId() == "" {
			return fmt.Errorf("%w: config-change request %s names no workspace", ErrMalformedRequest, r.GetId())
		}
		if err := request.ValidateConfigChange(cc); err != nil {
			return fmt.Errorf("%w: request %s: %w", ErrMalformedRequest, r.GetId(), err)
		}
		return nil
	default:
		return fmt.Errorf("%w: request %s has unknown kind %d", ErrMalformedRequest, r.GetId(), int32(r.GetKind()))
	}
}
