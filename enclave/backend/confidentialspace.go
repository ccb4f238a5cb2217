package backend

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ConfidentialSpaceConfig configures the gcpcs backend's sealing through
// workload identity federation and Cloud KMS. Every build validates it, so
// a config is checked the same way wherever it is read.
type ConfidentialSpaceConfig struct {
	// Project, Location, KeyRing and Key name the Cloud KMS key that wraps
	// the node's data key.
	Project  string
	Location string
	KeyRing  string
	Key      string
	// WorkloadIdentityProvider is the provider whose attribute condition
	// admits this image, and the audience of the attestation token:
	// //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER.
	WorkloadIdentityProvider string
	// STSEndpoint overrides https://sts.googleapis.com/v1/token.
	STSEndpoint string
	// KMSEndpoint overrides https://cloudkms.googleapis.com, for a
	// regional or private endpoint.
	KMSEndpoint string
	// StorageEndpoint overrides https://storage.googleapis.com, where the
	// node keeps its lasting files (ConfidentialSpaceFiles).
	StorageEndpoint string
	// LauncherSocket overrides the launcher's socket,
	// /run/container_launcher/teeserver.sock.
	LauncherSocket string
}

var (
	gcpProjectRE  = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	gcpLocationRE = regexp.MustCompile(`^[a-z0-9-]+$`)
	gcpKMSNameRE  = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)
	gcpProviderRE = regexp.MustCompile(`^//iam\.googleapis\.com/projects/[0-9]+/locations/global/workloadIdentityPools/[a-z0-9-]{4,32}/providers/[a-z0-9-]{4,32}$`)
)

// KeyName returns the Cloud KMS key's resource name.
func (c ConfidentialSpaceConfig) KeyName() string {
	return fmt.Sprintf("projects/%s/locations/%s/keyRings/%s/cryptoKeys/%s", c.Project, c.Location, c.KeyRing, c.Key)
}

// Validate reports every problem with c at once, or nil.
func (c ConfidentialSpaceConfig) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !gcpProjectRE.MatchString(c.Project) {
		bad("project %q is not a Google Cloud project id (the KMS key's project)", c.Project)
	}
	if !gcpLocationRE.MatchString(c.Location) {
		bad("location %q is not a Cloud KMS location such as global or europe-west4", c.Location)
	}
	if !gcpKMSNameRE.MatchString(c.KeyRing) {
		bad("key_ring %q is not a key ring name", c.KeyRing)
	}
	if !gcpKMSNameRE.MatchString(c.Key) {
		bad("key %q is not a crypto key name", c.Key)
	}
	if !gcpProviderRE.MatchString(c.WorkloadIdentityProvider) {
		bad("workload_identity_provider %q is not //iam.googleapis.com/projects/NUMBER/locations/global/"+
			"workloadIdentityPools/POOL/providers/PROVIDER", c.WorkloadIdentityProvider)
	}
	for name, u := range map[string]string{"sts_endpoint": c.STSEndpoint, "kms_endpoint": c.KMSEndpoint, "storage_endpoint": c.StorageEndpoint} {
		if u != "" && !strings.HasPrefix(u, "https://") {
			bad("%s %q must be https: tokens and the data key must not cross the network in the clear", name, u)
		}
	}
	return errors.Join(errs...)
}

// Files keeps a node's lasting files outside its data directory: Get of a
// file it does not keep is an fs.ErrNotExist. Its methods may be called
// concurrently.
type Files interface {
	Get(ctx context.Context, name string) ([]byte, error)
	Put(ctx context.Context, name string, data []byte) error
}
