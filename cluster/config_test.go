package cluster

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/enclave/keyring"
)

func TestConfigValidate(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	base := func() Config {
		c := DefaultConfig()
		c.NodeID, c.DataDir, c.BindAddr = "n1", "/tmp/x", "127.0.0.1:7000"
		c.Identity, c.Members = key, staticMembers{}
		return c
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string // substrings of the error; none means valid
	}{
		{"default plus identity", func(*Config) {}, nil},
		{"in-memory", func(c *Config) {
			c.BindAddr, c.DataDir = "", ""
			c.Identity, c.Members = nil, nil
			c.Transport = NewInmemNetwork().NewTransport("n1", "a")
			c.Storage = NewInmemStorage()
		}, nil},
		{"everything missing", func(c *Config) { *c = Config{} }, []string{
			"NodeID is required", "BindAddr is required", "DataDir is required",
			"HeartbeatTimeout", "Clock is required", "Logger is required", "MaxCommandBytes",
			"Identity is required", "JoinTimeout", "MaxConnsPerPeer", "MaxJoinConns", "MaxHandshakes",
		}},
		// Production: no network transport without authentication.
		{"no identity", func(c *Config) { c.Identity = nil }, []string{"Identity is required for the TLS transport"}},
		{"short identity", func(c *Config) { c.Identity = key[:32] }, []string{"Identity is 32 bytes"}},
		{"damaged identity", func(c *Config) {
			bad := append(ed25519.PrivateKey(nil), key...)
			bad[40] ^= 1
			c.Identity = bad
		}, []string{"Identity is damaged"}},
		{"member authorizer with a transport", func(c *Config) {
			c.BindAddr, c.DataDir = "", ""
			c.Transport = NewInmemNetwork().NewTransport("n1", "a")
			c.Storage = NewInmemStorage()
		}, []string{"Members and Join apply only to the TLS transport"}},
		// The identity also opens keyring copies, with any transport.
		{"keyring holder with a transport", func(c *Config) {
			c.BindAddr, c.DataDir, c.Members = "", "", nil
			c.Transport = NewInmemNetwork().NewTransport("n1", "a")
			c.Storage = NewInmemStorage()
			c.Keyring, c.SaveKeyring = &keyring.Keyring{}, func(*keyring.Keyring) error { return nil }
		}, nil},
		{"saving a keyring it lacks", func(c *Config) {
			c.SaveKeyring = func(*keyring.Keyring) error { return nil }
		}, []string{"SaveKeyring needs Identity and Keyring"}},
		{"bounds", func(c *Config) { c.MaxConnsPerPeer, c.MaxJoinConns, c.MaxHandshakes = 7, 0, 0 }, []string{
			"MaxConnsPerPeer 7 is below 8", "MaxJoinConns must be positive", "MaxHandshakes must be positive",
		}},
		{"bad addresses", func(c *Config) { c.BindAddr = "nohost" }, []string{"BindAddr"}},
		{"unspecified advertise", func(c *Config) { c.BindAddr = "0.0.0.0:7000" }, []string{"must name a reachable host"}},
		{"advertise fixes it", func(c *Config) { c.BindAddr, c.AdvertiseAddr = "0.0.0.0:7000", "10.0.0.1:7000" }, nil},
		{"timing", func(c *Config) {
			c.LeaderLeaseTimeout = time.Second
			c.ElectionTimeout = 100 * time.Millisecond
			c.OwnerTimeout = 10 * time.Millisecond
		}, []string{"LeaderLeaseTimeout 1s is not below", "ElectionTimeout 100ms is below", "OwnerTimeout 10ms is below"}},
		{"peers", func(c *Config) {
			c.Peers = []Peer{{ID: "n1", Address: "x:1"}, {ID: "n2"}}
		}, []string{"appears twice", "needs an ID and an Address", "Peers only apply with Bootstrap"}},
		{"transport and address", func(c *Config) { c.Transport = NewInmemNetwork().NewTransport("n1", "a") }, []string{"must be empty with a Transport"}},
		{"long node id", func(c *Config) { c.NodeID = strings.Repeat("n", 300) }, []string{"NodeID"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestErrorCodesRoundTrip(t *testing.T) {
	for _, c := range codes {
		err := errorf(c.err, "detail %d", 1)
		back := codeError(errorCode(err), err.Error())
		if back == nil || back.Error() != err.Error() {
			t.Fatalf("%v: got %v", c.err, back)
		}
		if !errors.Is(back, c.err) {
			t.Fatalf("%v does not match its sentinel after the round trip", c.err)
		}
	}
	if codeError(9999, "from the future") == nil || !errors.Is(codeError(9999, "x"), ErrInternal) {
		t.Fatal("unknown code is not ErrInternal")
	}
}

func TestEnumStrings(t *testing.T) {
	for _, s := range []interface{ String() string }{
		OutcomeSigned, OutcomeApproved, OutcomeRejected, OutcomeFailed, OutcomeUnspecified,
		StatusClaimed, StatusUnclaimed, StatusCompleted, StatusUnknown,
		PresignatureAvailable, PresignatureReserved, PresignatureUsed, PresignatureBurned, PresignatureUnknown,
		EventClaimed, EventReserved, EventCompleted, EventReleased, EventPresignaturesAdded,
		EventAPIUserAdded, EventKeyRecordAdded, EventRestored, EventKind(0),
	} {
		if s.String() == "" {
			t.Fatalf("%#v has no name", s)
		}
	}
}
