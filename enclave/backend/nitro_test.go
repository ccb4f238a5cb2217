package backend

import (
	"strings"
	"testing"
)

func TestNitroConfigValidate(t *testing.T) {
	good := NitroConfig{Region: "eu-west-1", KeyID: "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		KMSProxy: "vsock://3:8000", IMDSProxy: "vsock://3:8001"}
	tests := []struct {
		name   string
		change func(*NitroConfig)
		want   []string // substrings of the error; none means valid
	}{
		{"good", func(*NitroConfig) {}, nil},
		{"multi-region key ARN", func(c *NitroConfig) {
			c.KeyID = "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"
		}, nil},
		// An alias or a bare key id resolves in the parent's account.
		{"bare key id", func(c *NitroConfig) { c.KeyID = "1234abcd-12ab-34cd-56ef-1234567890ab" }, []string{"not a full KMS key ARN"}},
		{"alias", func(c *NitroConfig) { c.KeyID = "alias/coterie" }, []string{"not a full KMS key ARN"}},
		{"alias ARN", func(c *NitroConfig) { c.KeyID = "arn:aws:kms:eu-west-1:111122223333:alias/coterie" }, []string{"not a full KMS key ARN"}},
		{"https endpoint", func(c *NitroConfig) { c.KMSEndpoint = "https://kms-fips.eu-west-1.amazonaws.com" }, nil},
		{"empty", func(c *NitroConfig) { *c = NitroConfig{} }, []string{"region", "kms_key_id is required", "kms_proxy", "imds_proxy"}},
		{"bad region", func(c *NitroConfig) { c.Region = "Europe" }, []string{`region "Europe"`}},
		{"ARN of another region", func(c *NitroConfig) {
			c.KeyID = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		}, []string{"in region us-east-1, not eu-west-1"}},
		{"bad key id", func(c *NitroConfig) { c.KeyID = "my key" }, []string{`kms_key_id "my key" is not a full KMS key ARN`}},
		{"tcp proxy", func(c *NitroConfig) { c.KMSProxy = "127.0.0.1:8000" }, []string{"kms_proxy", "vsock://CID:PORT"}},
		{"port zero", func(c *NitroConfig) { c.IMDSProxy = "vsock://3:0" }, []string{"imds_proxy"}},
		{"http endpoint", func(c *NitroConfig) { c.KMSEndpoint = "http://kms.eu-west-1.amazonaws.com" }, []string{"must be https"}},
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
}
