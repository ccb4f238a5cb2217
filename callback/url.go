package callback

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// CheckURL reports whether raw may be a handler's base URL: https to any
// host, or plain http to a loopback host only (localhost, 127.0.0.0/8,
// ::1), because a request token and the handler's answer must not cross
// a network in the clear. The URL must name a host and carry no user
// info, query or fragment. It is the one URL check: Config.Validate and a
// node's config validation both call it, so a URL a node accepts is one
// the Client accepts. The error does not wrap ErrInvalidConfig; callers
// add their own context.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("handler URL does not parse")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("handler URL scheme %q is not https", truncate(u.Scheme, 16))
	case u.Opaque != "":
		return errors.New("handler URL has no host")
	case u.User != nil:
		return errors.New("handler URL must not carry user info")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return errors.New("handler URL must not carry a query or fragment")
	case u.Hostname() == "":
		return errors.New("handler URL has no host")
	case u.Scheme == "https":
		return nil
	case isLoopback(u.Hostname()):
		return nil
	default:
		return fmt.Errorf("handler URL is http to %q, which is not loopback: use https", truncate(u.Hostname(), 64))
	}
}

// isLoopback reports whether host is a name or address that never leaves
// the machine. Names other than localhost are not trusted to resolve to
// loopback, whatever they look like.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
