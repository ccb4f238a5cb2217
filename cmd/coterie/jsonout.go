package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// plainJSON turns a protobuf message into values encoding/json writes as a
// user expects, where protojson does not: 64-bit integers as numbers
// (protojson writes strings), and times, the int64 Unix nanoseconds of
// fields named "at" or "..._at", as RFC 3339 (absent when 0). Field names
// are the proto names; enums are their names; bytes are base64, as in
// protojson. With all, unset scalar fields are written as their zero
// value (for counters).
func plainJSON(m protoreflect.Message, all bool) map[string]any {
	out := map[string]any{}
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		set := m.Has(fd)
		if !set && !(all && fd.Message() == nil && fd.ContainingOneof() == nil && !fd.IsList() && !fd.IsMap()) {
			continue
		}
		v := m.Get(fd)
		name := string(fd.Name())
		switch {
		case fd.IsList():
			list := v.List()
			vals := make([]any, list.Len())
			for j := range list.Len() {
				vals[j] = plainValue(fd, list.Get(j), all)
			}
			out[name] = vals
		case fd.IsMap():
			mm := map[string]any{}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				mm[k.String()] = plainValue(fd.MapValue(), mv, all)
				return true
			})
			out[name] = mm
		case isTime(fd):
			if ns := v.Int(); ns != 0 {
				out[name] = time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
			}
		default:
			out[name] = plainValue(fd, v, all)
		}
	}
	return out
}

// isTime says whether a field holds Unix nanoseconds (the workspace
// protocol's convention for times).
func isTime(fd protoreflect.FieldDescriptor) bool {
	n := string(fd.Name())
	return fd.Kind() == protoreflect.Int64Kind && !fd.IsList() && (n == "at" || strings.HasSuffix(n, "_at"))
}

func plainValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, all bool) any {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return plainJSON(v.Message(), all)
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return int32(v.Enum())
	case protoreflect.BytesKind:
		return base64.StdEncoding.EncodeToString(v.Bytes())
	default:
		return v.Interface()
	}
}

// printJSONLine writes v as one line of compact JSON, for streams.
func printJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// printJSON writes v as indented JSON, the form every --json flag prints.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
