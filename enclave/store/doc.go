// Package store is a node's local store: one bbolt file (node.db, mode
// 0600) in the node's data directory, holding the node's sealed records —
// its Ed25519 identity key and its copy of the cluster keyring — with a
// schema version.
//
// Create writes a complete store atomically and never overwrites one. Open
// checks the file before trusting it: a truncated or overwritten file is
// ErrCorrupt, a store from a newer Coterie is ErrNewerSchema, and a data
// directory that another machine's enclave sealed fails to unseal with
// enclave.ErrForeignEnclave. Every later write is one bbolt transaction.
//
// The store holds no plaintext secret: the identity's public key and the
// enclave kind are the only values stored in the clear.
package store
