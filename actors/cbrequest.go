package actors

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/protocol"
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

// decimal is the float form protocol v2 carries next to the exact string;
// an unparsable amount is 0 (the policy reads the string).
func decimal(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return f
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
