// Package imds gets the parent instance's IAM role credentials from the
// EC2 instance metadata service (IMDSv2) for a Nitro enclave (build tag
// nitro), which signs its KMS calls with them.
//
// The enclave has no network; it reaches IMDS through a vsock-proxy on the
// parent that forwards to 169.254.169.254:80 (Config.Dial). IMDS speaks
// plain HTTP, so the parent could answer with other credentials: that
// gives it nothing, because the credentials only authorise the KMS call,
// and KMS releases the data key only against the enclave's attestation
// document, encrypted to the enclave's key. At worst KMS refuses the call,
// which the parent could cause anyway by dropping it.
//
// Provider implements aws.CredentialsProvider; wrap it in
// aws.NewCredentialsCache (kmsseal.NewClient does), which refreshes before
// Expiration. It is safe for concurrent use.
package imds
