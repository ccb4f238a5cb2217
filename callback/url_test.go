package callback

import (
	"strings"
	"testing"
)

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url  string
		want string // a substring of the error; "" means accepted
	}{
		{"https://handler.example.com", ""},
		{"https://handler.example.com:8443/cb/", ""},
		{"https://10.0.0.7/cb", ""},
		{"https://[2001:db8::1]:443", ""},
		{"http://127.0.0.1:8090", ""},
		{"http://127.8.9.10:8090/cb", ""},
		{"http://localhost:8090", ""},
		{"http://LocalHost", ""},
		{"http://[::1]:8090/", ""},
		{"http://[::ffff:127.0.0.1]:8090", ""},
		{"http://handler.example.com", "not loopback"},
		{"http://10.0.0.7:8090", "not loopback"},
		{"http://0.0.0.0:8090", "not loopback"},
		{"http://[::]:8090", "not loopback"},
		{"http://[2001:db8::1]", "not loopback"},
		{"http://localhost.example.com", "not loopback"},
		{"http://127.0.0.1.example.com", "not loopback"},
		{"http://foo.localhost", "not loopback"},
		{"http://2130706433", "not loopback"}, // 127.0.0.1 as an integer: not an address Go parses
		{"ftp://127.0.0.1", "scheme"},
		{"HTTPS://handler.example.com", ""},
		{"handler.example.com", "scheme"},
		{"", "scheme"},
		{"garbage", "scheme"},
		{"https:handler.example.com", "no host"},
		{"https:///cb", "no host"},
		{"http://:8090", "no host"},
		{"https://u:p@handler.example.com", "user info"},
		{"https://handler.example.com/?a=b", "query"},
		{"https://handler.example.com/?", "query"},
		{"https://handler.example.com/#x", "fragment"},
		{"https://a b\x7f", "does not parse"},
		{"http://[::1", "does not parse"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			err := CheckURL(tc.url)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatal("accepted")
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}
