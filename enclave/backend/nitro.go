package backend

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// NitroConfig configures the nitro backend's KMS sealing. Every build
// validates it, so a config is checked the same way wherever it is read.
type NitroConfig struct {
	// Region is the KMS key's AWS region, such as "eu-west-1".
	Region string
	// KeyID is the KMS key's full key ARN
	// (arn:aws:kms:REGION:ACCOUNT:key/ID). Not an alias or a bare key id:
	// those resolve in whatever account the parent's credentials belong
	// to, so a parent could name a key of its own.
	KeyID string
	// KMSProxy is the parent instance's vsock-proxy to KMS, such as
	// "vsock://3:8000".
	KMSProxy string
	// KMSEndpoint overrides https://kms.REGION.amazonaws.com, for a FIPS
	// or VPC endpoint. TLS always verifies it inside the enclave.
	KMSEndpoint string
	// IMDSProxy is the parent's vsock-proxy to the instance metadata
	// service, where the parent role's credentials come from, such as
	// "vsock://3:8001".
	IMDSProxy string
}

var (
	regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	kmsARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:kms:([a-z0-9-]+):[0-9]{12}:key/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$`)
)

// Validate reports every problem with c at once, or nil.
func (c NitroConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !regionRE.MatchString(c.Region) {
		bad("region %q is not an AWS region such as eu-west-1", c.Region)
	}
	switch m := kmsARNRE.FindStringSubmatch(c.KeyID); {
	case c.KeyID == "":
		bad("kms_key_id is required: the KMS key whose policy admits this enclave's PCRs")
	case m == nil:
		bad("kms_key_id %q is not a full KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID): an alias or a bare key id "+
			"resolves in the account of the parent's credentials, which could name a key of its own", c.KeyID)
	case m[1] != c.Region:
		bad("kms_key_id %q is in region %s, not %s", c.KeyID, m[1], c.Region)
	}
	if _, _, err := parseVsock(c.KMSProxy); err != nil {
		bad("kms_proxy: %v", err)
	}
	if _, _, err := parseVsock(c.IMDSProxy); err != nil {
		bad("imds_proxy: %v", err)
	}
	if c.KMSEndpoint != "" && !strings.HasPrefix(c.KMSEndpoint, "https://") {
		bad("kms_endpoint %q must be https: TLS to KMS must end inside the enclave", c.KMSEndpoint)
	}
	return errors.Join(errs...)
}

// parseVsock parses "vsock://CID:PORT".
func parseVsock(s string) (cid, port uint32, err error) {
	rest, ok := strings.CutPrefix(s, "vsock://")
	c, p, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return 0, 0, fmt.Errorf("%q is not vsock://CID:PORT (the parent is CID 3)", s)
	}
	cid64, err1 := strconv.ParseUint(c, 10, 32)
	port64, err2 := strconv.ParseUint(p, 10, 32)
	if err1 != nil || err2 != nil || port64 == 0 {
		return 0, 0, fmt.Errorf("%q is not vsock://CID:PORT with numbers", s)
	}
	return uint32(cid64), uint32(port64), nil
}
