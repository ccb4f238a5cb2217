package protocol

// This file is hand-written (it is not generated) and is owned with
// workspace.proto. It defines the one digest that both the co-signer node and
// the workspace compute for a config-change approval.

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// ApprovalDomain prefixes every approval digest's input, so that an approval
// signature can never be mistaken for a signature over anything else.
const ApprovalDomain = "coterie/v1/config-change-approval"

// ErrApprovalInput is returned by ApprovalDigest when the request is not a
// config change, misses an identity field, or holds fields this version of
// the schema does not know (an approver must not sign what it cannot see).
var ErrApprovalInput = errors.New("protocol: request cannot be approved")

// ApprovalDigest returns the SHA-256 digest that an approver signs (with
// Ed25519) to approve the config-change request req.
//
// The digest covers the domain, the workspace, request and user IDs and the
// config change (type and payload). It does not cover state, times or
// signatures, which change as the request moves on. The encoding is
// canonical and independent of protobuf's wire format:
//
//	SHA-256( str(ApprovalDomain) || str(workspace_id) || str(request_id) || str(user_id) || msg(config_change) )
//
// where str(s) is uvarint(len(s)) || s, and msg(m) encodes each set field of
// m in field-number order as uvarint(number) || value, with
//   - bool: one byte 0 or 1;
//   - signed integers and enums: int64 as 8 bytes big-endian;
//   - unsigned integers: uint64 as 8 bytes big-endian;
//   - string and bytes: str(value);
//   - messages: str(msg(value));
//   - repeated fields: uvarint(count) followed by each element.
//
// Fields at their zero value are not set in proto3 and are left out. Floats,
// maps and unknown fields are refused with ErrApprovalInput.
func ApprovalDigest(req *WsRequest) ([32]byte, error) {
	var zero [32]byte
	if req == nil || req.GetConfigChange() == nil {
		return zero, fmt.Errorf("%w: not a config-change request", ErrApprovalInput)
	}
	if req.GetWorkspaceId() == "" || req.GetId() == "" || req.GetUserId() == "" {
		return zero, fmt.Errorf("%w: missing workspace, request or user ID", ErrApprovalInput)
	}
	var b []byte
	b = appendStr(b, []byte(ApprovalDomain))
	b = appendStr(b, []byte(req.GetWorkspaceId()))
	b = appendStr(b, []byte(req.GetId()))
	b = appendStr(b, []byte(req.GetUserId()))
	m, err := canonicalMessage(req.GetConfigChange().ProtoReflect(), 0)
	if err != nil {
		return zero, err
	}
	b = appendStr(b, m)
	return sha256.Sum256(b), nil
}

// maxCanonicalDepth bounds recursion through nested messages.
const maxCanonicalDepth = 16

func canonicalMessage(m protoreflect.Message, depth int) ([]byte, error) {
	if depth > maxCanonicalDepth {
		return nil, fmt.Errorf("%w: nesting too deep", ErrApprovalInput)
	}
	if len(m.GetUnknown()) > 0 {
		return nil, fmt.Errorf("%w: unknown fields in %s", ErrApprovalInput, m.Descriptor().FullName())
	}
	var fields []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		fields = append(fields, fd)
		return true
	})
	slices.SortFunc(fields, func(a, b protoreflect.FieldDescriptor) int { return int(a.Number()) - int(b.Number()) })
	var out []byte
	for _, fd := range fields {
		if fd.IsMap() {
			return nil, fmt.Errorf("%w: map field %s", ErrApprovalInput, fd.FullName())
		}
		out = binary.AppendUvarint(out, uint64(fd.Number()))
		v := m.Get(fd)
		if fd.IsList() {
			l := v.List()
			out = binary.AppendUvarint(out, uint64(l.Len()))
			for i := range l.Len() {
				var err error
				if out, err = appendValue(out, fd, l.Get(i), depth); err != nil {
					return nil, err
				}
			}
			continue
		}
		var err error
		if out, err = appendValue(out, fd, v, depth); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func appendValue(out []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value, depth int) ([]byte, error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if v.Bool() {
			return append(out, 1), nil
		}
		return append(out, 0), nil
	case protoreflect.EnumKind:
		return binary.BigEndian.AppendUint64(out, uint64(int64(v.Enum()))), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return binary.BigEndian.AppendUint64(out, uint64(v.Int())), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return binary.BigEndian.AppendUint64(out, v.Uint()), nil
	case protoreflect.StringKind:
		return appendStr(out, []byte(v.String())), nil
	case protoreflect.BytesKind:
		return appendStr(out, v.Bytes()), nil
	case protoreflect.MessageKind, protoreflect.GroupKind:
		sub, err := canonicalMessage(v.Message(), depth+1)
		if err != nil {
			return nil, err
		}
		return appendStr(out, sub), nil
	default:
		return nil, fmt.Errorf("%w: field %s has kind %s", ErrApprovalInput, fd.FullName(), fd.Kind())
	}
}

func appendStr(out, s []byte) []byte {
	out = binary.AppendUvarint(out, uint64(len(s)))
	return append(out, s...)
}
