//go:build nitro

package imds_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/enclave/nitro/imds"
)

// metadata serves the IMDSv2 calls for one role: a token from PUT, then
// the role list and the role's credentials for requests that carry it.
func metadata(t *testing.T, role string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" && r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") != "":
			fmt.Fprint(w, "session-token")
		case r.Header.Get("X-Aws-Ec2-Metadata-Token") != "session-token":
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/latest/meta-data/iam/security-credentials/" && role != "":
			fmt.Fprintln(w, role)
		case r.URL.Path == "/latest/meta-data/iam/security-credentials/"+role && role != "":
			fmt.Fprint(w, `{"Code":"Success","AccessKeyId":"ASIATEST","SecretAccessKey":"secret","Token":"tok","Expiration":"2030-01-02T03:04:05Z"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRetrieve(t *testing.T) {
	srv := metadata(t, "coterie-parent")
	c, err := imds.New(srv.URL, nil).Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessKeyID != "ASIATEST" || c.SessionToken != "tok" || !c.CanExpire || !c.Expires.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("Retrieve = %+v", c)
	}
}

func TestRetrieveNoRole(t *testing.T) {
	srv := metadata(t, "")
	_, err := imds.New(srv.URL, nil).Retrieve(context.Background())
	if !errors.Is(err, imds.ErrNoCredentials) {
		t.Fatalf("Retrieve = %v, want ErrNoCredentials", err)
	}
	if strings.Contains(err.Error(), "session-token") {
		t.Fatalf("error %q holds the session token", err)
	}
}
