package backend

import (
	"strings"
	"testing"
)

const testProvider = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/coterie/providers/attestation"

func TestConfidentialSpaceConfigValidate(t *testing.T) {
	good := ConfidentialSpaceConfig{Project: "coterie-prod", Location: "europe-west4", KeyRing: "coterie", Key: "data-key",
		WorkloadIdentityProvider: testProvider}
	tests := []struct {
		name   string
		change func(*ConfidentialSpaceConfig)
		want   []string // substrings of the error; none means valid
	}{
		{"good", func(*ConfidentialSpaceConfig) {}, nil},
		{"https endpoints", func(c *ConfidentialSpaceConfig) {
			c.STSEndpoint, c.KMSEndpoint = "https://sts.googleapis.com/v1/token", "https://europe-west4-cloudkms.googleapis.com"
		}, nil},
		{"empty", func(c *ConfidentialSpaceConfig) { *c = ConfidentialSpaceConfig{} },
			[]string{"project", "location", "key_ring", "key ", "workload_identity_provider"}},
		{"project number", func(c *ConfidentialSpaceConfig) { c.Project = "123456789012" }, []string{`project "123456789012"`}},
		{"key with slash", func(c *ConfidentialSpaceConfig) { c.Key = "a/b" }, []string{`key "a/b"`}},
		{"provider by project id", func(c *ConfidentialSpaceConfig) {
			c.WorkloadIdentityProvider = strings.Replace(testProvider, "123456789012", "coterie-prod", 1)
		}, []string{"workload_identity_provider"}},
		{"http sts", func(c *ConfidentialSpaceConfig) { c.STSEndpoint = "http://sts.googleapis.com/v1/token" }, []string{"sts_endpoint", "must be https"}},
		{"http kms", func(c *ConfidentialSpaceConfig) { c.KMSEndpoint = "http://127.0.0.1:8080" }, []string{"kms_endpoint", "must be https"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.change(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate = nil")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %v, want it to mention %q", err, w)
				}
			}
		})
	}
	if got := good.KeyName(); got != "projects/coterie-prod/locations/europe-west4/keyRings/coterie/cryptoKeys/data-key" {
		t.Errorf("KeyName = %s", got)
	}
}
