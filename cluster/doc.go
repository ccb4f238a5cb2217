// Package cluster replicates Coterie's shared state with hashicorp/raft:
// who owns each request, which presignature each signature consumes, and
// the sealed API-user and key records. It is the guard of invariants I1
// (a presignature is used at most once) and I2 (one owner per request).
//
// # Duties
//
//   - Run raft: bolt log and stable store (raft-boltdb/v2) and file
//     snapshots under DataDir/raft, over a mutual-TLS 1.3 transport
//     authorised by the member table (New), or over the in-memory
//     transport for tests (package clustertest).
//   - Apply one versioned protobuf command, protocol.ClusterCommand, in a
//     deterministic FSM: Claim, Reserve, Complete, Release,
//     PresignaturesAdded, APIUserAdded, KeyRecordAdded, Decide,
//     AuditTruncate, and the member, keyring and handler commands.
//   - Forward a follower's proposals to the leader, and let any node ask
//     the leader to add or remove a voter.
//   - While leading, release the requests of owners that have gone silent.
//   - Answer the node's queries from the local replica (Reader), and
//     notify it of changes (FSM.Subscribe).
//   - Provide each key's presignature pool (PresignStore): the one place
//     where presignature shares are sealed into the pool and opened out of
//     it.
//
// # The FSM
//
// Apply decodes and validates the command (DecodeCommand), then applies it.
// It is deterministic: the only time it reads is the proposer's timestamp
// in the command; it iterates maps only in sorted order; its limits are
// constants. Errors (ErrClaimed, ErrNotOwner, ErrPresignatureUsed,
// ErrPresignatureBurned, ErrUnknownRequest, ErrBadVersion, ...) are the
// entry's response and change nothing; Apply never panics on a bad entry.
//
// A request is claimed by the first Claim that commits (I2); only its
// owner may Reserve presignatures for it or Complete it. Release{node}
// returns the node's unfinished requests to unclaimed (any node may claim
// them again, with the next attempt number) and burns every presignature
// they had reserved. Complete marks the request's reserved presignatures
// used, whatever the outcome, because an online round may have started.
//
// # Presignatures: used once, ever, in bounded memory
//
// A presignature enters a key's pool by an Add that carries the proposing
// node's number for that key (its origin number). The sealed share's
// associated data binds the key, the node, the number and the id
// (PresignatureRecordID), and the FSM admits an Add only when its numbers
// are above the node's high-water mark for the key. So an Add applied once
// can never be applied again, however long ago, and the same ciphertext
// under a fresh number or another node's name does not decrypt: a spent
// presignature cannot come back. Cluster.AddPresignatures numbers a node's
// Adds and proposes them one at a time per key, so fresh ones are never
// refused. Memory is one mark per node and key.
//
// An admitted presignature is live (available or reserved) until its
// request completes (used) or its owner is released (burned), and a
// presignature is reserved only from available: no command takes one back
// from reserved, used or burned. So each presignature is reserved at most
// once (I1), and that survives snapshots, which carry the whole pool and
// the marks. A Reserve may name the presignature or let the FSM pick the
// oldest available one (ReserveNext), so that Sessions reserving at once
// never collide; a Session that presigned on the spot adds and reserves its
// presignature in one entry (PresignaturesAdded.reserve_for).
//
// Spent presignatures drop their sealed share at once; the FSM remembers
// the most recent 4096 spent ids per key only to name the reason
// (ErrPresignatureUsed, ErrPresignatureBurned) when one is asked for again.
// Completed requests are retained for the most recent 16384 completions.
//
// # The audit log
//
// Each applied command that changes a request (claim, the callback
// handler's decision, a reservation, an outcome, a release) or the
// cluster's configuration (members, policy, join tokens, keyring,
// pairings, callback handlers) appends entries to a hash chain (package
// cluster/audit) held in the FSM, stamped with the raft index and the
// proposer's time: every replica derives the same chain, and a snapshot
// carries the retained entries and their anchor. The handler's APPROVE
// rides on a request's first Reserve; other decisions commit a Decide.
// AuditTruncate, proposed after the proposer exported the oldest entries,
// drops them; beyond a constant cap the FSM drops the oldest by itself.
// No entry holds a secret. See fsm_audit.go.
//
// # Proposals and forwarding
//
// Propose stamps the command with the node id, the version and Config.Clock
// time. On the leader it goes to raft directly; on a follower it is sent to
// the leader over the forwarding path: on the TLS transport, a second
// stream kind on raft's own port (first byte 'F'), carrying length-prefixed
// protobuf frames bounded by MaxCommandBytes. The leader validates the command
// before it enters the log, so garbage never does. Typed errors travel as
// codes and match their sentinels with errors.Is on the follower.
//
// Propose retries only when the command certainly did not commit (no
// leader, not the leader, nothing sent); when it may have committed
// (leadership lost mid-commit, connection lost after sending) it returns
// ErrUncertain and the caller reads the state. A successful Propose means
// the command committed and the local FSM applied it (read-your-writes):
// after each forwarded commit the leader appends a raft barrier so that
// followers learn of the commit at once rather than after CommitTimeout.
//
// # The transport: mutual TLS, authorised by the member table
//
// One port serves three streams, each a TLS 1.3 connection on which both
// sides present a self-signed certificate over their Ed25519 identity key
// (Config.Identity, the enclave-sealed key; the certificate is made in
// memory at start). No CA is involved: a peer is who its key says, and
// Config.Members (the FSM's member table) says whether that key is a
// member. After the handshake the dialer's first byte names the stream and
// the server answers one byte, accepting or refusing it, before any frame
// moves:
//
//   - 'R', raft's RPCs, and 'F', forwarded proposals, only between
//     members: a server refuses them from a key that is not a member
//     before reading a frame, and a dialer refuses a server that is not a
//     member, or not the member raft has at that address.
//   - 'J', the join handshake (Config.Join; refused when nil), to any key:
//     one request frame, one answer frame, then close. DialJoin is the
//     joiner's side; it accepts only the server whose key matches the join
//     token's pin (IdentityPin).
//
// The leader runs a forwarded request only from an authenticated member,
// and a forwarded command only when it is stamped with that member's id
// (ErrForbidden otherwise): a node proposes in its own name only, and
// membership changes come from members. A member removed from the table
// gets nothing more through its open forwarding streams, and its raft
// streams are closed within a second.
//
// Bad input costs bounded resources. Handshakes and the first byte must
// arrive within TransportTimeout, and at most MaxHandshakes run at once. A
// frame that claims more than its bound is refused before anything is
// allocated for it, and a frame's memory grows only with the bytes that
// arrive. Each member key holds at most MaxConnsPerPeer streams, keys that
// are not members at most MaxJoinConns together. New builds no
// unauthenticated network transport: without Identity it refuses to
// start, and only tests pass a Transport of their own. Raft's
// own stream decoder is hashicorp's; only members reach it.
//
// By default the cluster itself is the authorizer (Cluster.Member): its
// replica's member table once the replica has applied at least as far as
// the table this node saw last (Config.KnownMembers, kept sealed by the
// node through Config.SaveMembers), and that table before. A joiner starts
// with the table the admitting member sent, and a restarted node with the
// one it saw before it stopped: raft replays the log only once a leader is
// known, and the leader must be let in first.
//
// # Joining
//
// A member mints a one-time join token (IssueJoinToken): the FSM records
// its id, the hash of its secret and its expiry; the token carries the
// member's address and a pin of its identity key. The joiner (Join) dials
// the member's join stream and runs the exchange twice: a dry run, in
// which the member checks the token and the joiner's attestation evidence
// (which binds a fresh transfer key and the joiner's TLS identity key)
// against the FSM's policy and answers with its own evidence, changing
// nothing; then, once the joiner has checked that evidence against its own
// policy, a commit, in which the member records the joiner in the member
// table (spending the token; only the same key may use it again, for a
// retried join), has the leader add it as a non-voter, and answers with the
// keyring wrapped to the transfer key. The joiner seals the keyring; once
// it runs and has caught up it asks to become a voter, which the leader
// grants only to members of the table.
//
// # Silent owners (owner_timeout)
//
// Liveness is raft's: the leader heartbeats every follower, and raft
// reports each failed and each resumed heartbeat as an observation. The
// leader's owner watch times silence with Config.Clock from the first
// failed heartbeat it saw; a node that owns requests but is no longer in
// the configuration is silent from the first check that notices. Once a
// node that owns unfinished requests has been silent for OwnerTimeout, the
// leader proposes Release of it. The table belongs to the current leader
// and restarts empty on every leadership change, so after a failover a dead
// owner is released OwnerTimeout after the new leader's first failed
// heartbeat to it (plus up to TransportTimeout for a heartbeat to a hung
// node to fail).
//
// A silent node that is gone, whose cluster port refuses connections (its
// process died and its host lives), is released at once: the watch checks
// on every failed heartbeat, so a killed follower's requests move within a
// heartbeat or two, and a killed leader's within an election. Only a
// refusal counts: a timeout may be a hung process or a partition, and
// waits for OwnerTimeout.
//
// Because Release burns reservations and refuses the old owner's Reserve
// and Complete (ErrNotOwner), a released node that was only slow or cut
// off can finish at most the online rounds whose reservations had
// committed (I6); the workspace keeps one signature per digest.
//
// The same heartbeats judge a removal: the leader refuses to remove a voter
// when the other voters it can reach would fall short of a quorum, whoever
// asked (RemoveMember forwards, and CheckRemoval asks without removing).
// A follower cannot judge it: it sees no heartbeats but the leader's.
// raft keeps the leader's per-follower replication state private, so each
// follower reports its own term, commit and applied index to the leader
// about once a second over the forwarding path; Progress returns the
// reports the leader received while it leads. Reports and checks commit
// nothing and carry no raft index.
//
// # Restoring a snapshot
//
// Restore, on the leader, merges a saved state (package cluster/snapfile)
// into the live one and installs the result with raft's user restore;
// followers install it as a snapshot. It refuses, changing nothing, a
// state of another cluster or one whose records this node's keyring does
// not open. The live member table, join tokens, policy, keyring version
// and callback handlers stay; the snapshot brings back records, requests
// and pools the live state lacks; every presignature live in either is
// burned and every claimed request released (I1: a snapshot is older than
// the live state). While it runs the leader appends no command.
//
// # Reads
//
// Reader methods read the local FSM under a read lock and return copies.
// On the leader they are current; on a follower they lag by the commits it
// has not applied yet (milliseconds normally; for as long as it is cut off
// from the leader). A node always sees its own successful proposals.
//
// LogEntries reads the committed raft log itself, up to what the local FSM
// has applied and from the first entry not yet compacted into a snapshot,
// for outside checkers: each entry says what a command did to requests and
// presignatures (LogEntry), never a sealed share, record, join token hash,
// keyring copy or callback key.
//
// # Concurrency
//
// Cluster, FSM (queries) and PresignStore are safe for concurrent use. raft
// calls FSM.Apply, Snapshot and Restore from one goroutine. The transport
// calls Config.Members from its connection goroutines, so it must be safe
// for concurrent use too.
package cluster
