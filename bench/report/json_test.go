package report

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestJSONRoundTrip(t *testing.T) {
	for name, r := range map[string]*Run{
		"drill":    drillRun(),
		"find max": findMaxRun(),
		"empty":    {},
	} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteJSON(&b, r); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), "\n  \"kind\"") {
				t.Errorf("not indented:\n%.200s", b.String())
			}
			got, err := ReadJSON(&b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, r) {
				t.Errorf("round trip changed the run:\n got %+v\nwant %+v", got, r)
			}
		})
	}
}

// floatFields returns a pointer to every float64 reachable from v through
// structs, slices and pointers, so that a float added to Run later is
// covered by TestWriteJSONNonFinite without editing it.
func floatFields(v reflect.Value) []*float64 {
	switch v.Kind() {
	case reflect.Float64:
		return []*float64{v.Addr().Interface().(*float64)}
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return floatFields(v.Elem())
	case reflect.Struct:
		var out []*float64
		for i := range v.NumField() {
			out = append(out, floatFields(v.Field(i))...)
		}
		return out
	case reflect.Slice:
		var out []*float64
		for i := range v.Len() {
			out = append(out, floatFields(v.Index(i))...)
		}
		return out
	}
	return nil
}

func TestWriteJSONNonFinite(t *testing.T) {
	r := findMaxRun()
	r.CPU = []ProcessCPU{{Name: "node-1"}}
	fields := floatFields(reflect.ValueOf(r).Elem())
	if len(fields) < 10 {
		t.Fatalf("found %d float fields, the walk is broken", len(fields))
	}
	for i, f := range fields {
		*f = []float64{math.NaN(), math.Inf(1), math.Inf(-1)}[i%3]
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatalf("WriteJSON with non-finite figures: %v", err)
	}
	got, err := ReadJSON(&b)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range floatFields(reflect.ValueOf(got).Elem()) {
		if *f != 0 {
			t.Errorf("float field %d read back as %v, want 0", i, *f)
		}
	}
	for i, f := range fields {
		if finite(*f) {
			t.Errorf("float field %d of the run was changed to %v", i, *f)
		}
	}
}

func TestReadJSONMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, in string
	}{
		{"empty", ""},
		{"truncated", `{"kind": "bench"`},
		{"null", "null"},
		{"array", "[]"},
		{"wrong type", `{"kind": 1}`},
		{"second object", `{"kind": "bench"} {}`},
		{"trailing garbage", `{"kind": "bench"} x`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ReadJSON(strings.NewReader(tc.in))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ReadJSON(%q) = %v, %v; want ErrMalformed", tc.in, r, err)
			}
		})
	}
}

func TestReadJSONReaderError(t *testing.T) {
	boom := errors.New("boom")
	_, err := ReadJSON(iotest.ErrReader(boom))
	if !errors.Is(err, boom) || errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v, want the reader's error and not ErrMalformed", err)
	}
}

func TestReadJSONIgnoresUnknownFields(t *testing.T) {
	r, err := ReadJSON(strings.NewReader(`{"kind": "drill", "from_the_future": [1, 2]}`))
	if err != nil || r.Kind != "drill" {
		t.Fatalf("got %+v, %v", r, err)
	}
}
