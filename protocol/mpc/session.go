package mpc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	pb "github.com/coterie-mpc/coterie/protocol"
	"github.com/fxamacker/cbor/v2"
	"github.com/taurusgroup/multi-party-sig/pkg/party"
	libproto "github.com/taurusgroup/multi-party-sig/pkg/protocol"
)

// Machine is the part of a session that a message router needs: every
// *Session[T] is a Machine.
//
// All methods are safe for concurrent use; calls are serialized. Accept and
// the session constructors do the protocol's CPU-heavy work (up to seconds)
// on the calling goroutine, so an actor must call them off its mailbox.
type Machine interface {
	// Accept checks env and, if it passes, feeds it to the protocol.
	//
	// A *MessageError means env alone was rejected and the session is
	// unchanged. Any other error is the session's terminal error (also
	// returned by Err and Result): an *AbortError that names the party that
	// misbehaved, a *PeerAbortError, or an error wrapping ErrLocal.
	Accept(env *pb.MpcEnvelope) error
	// Outgoing returns the envelopes that the session wants sent since the
	// last call, in order, and forgets them; the caller owns the slice. An
	// envelope with an empty To goes to every other party of the session.
	Outgoing() []*pb.MpcEnvelope
	// Done reports whether the session has finished, with a result or an
	// error, or was closed.
	Done() bool
	// Err returns the terminal error, or nil while running or on success.
	Err() error
	// Close abandons the session if it is still running: Result then
	// returns ErrClosed and Accept refuses every envelope. Close is
	// idempotent. A session holds no goroutine or other resource besides
	// memory, so a caller that gives up (on its own timeout, say) loses
	// nothing by closing it late.
	Close()
}

// Session is one party's run of one CMP sub-protocol, as a message-driven
// state machine. It reads no clock and does no I/O: the caller delivers
// incoming envelopes with Accept, sends what Outgoing returns, and owns
// timeouts and cancellation. T is the result type: *KeyShare, *Presignature
// or *Signature.
type Session[T any] struct {
	s *session
}

var _ Machine = (*Session[*KeyShare])(nil)

// Accept implements Machine.
func (s *Session[T]) Accept(env *pb.MpcEnvelope) error { return s.s.accept(env) }

// Outgoing implements Machine.
func (s *Session[T]) Outgoing() []*pb.MpcEnvelope { return s.s.outgoing() }

// Done implements Machine.
func (s *Session[T]) Done() bool { return s.s.isDone() }

// Err implements Machine.
func (s *Session[T]) Err() error {
	_, err := s.s.outcome()
	if errors.Is(err, ErrNotDone) {
		return nil
	}
	return err
}

// Close implements Machine.
func (s *Session[T]) Close() { s.s.close() }

// Result returns the session's result once it is done: ErrNotDone while it
// runs, ErrClosed if it was closed first, or its terminal error.
func (s *Session[T]) Result() (T, error) {
	var zero T
	res, err := s.s.outcome()
	if err != nil {
		return zero, err
	}
	return res.(T), nil
}

// SessionID returns the session's ID.
func (s *Session[T]) SessionID() []byte { return slices.Clone(s.s.id) }

// Protocol returns the sub-protocol that the session runs.
func (s *Session[T]) Protocol() Protocol { return s.s.proto }

// Self returns the party that runs this session.
func (s *Session[T]) Self() PartyID { return s.s.self }

// Parties returns the session's parties, sorted, including Self.
func (s *Session[T]) Parties() []PartyID { return slices.Clone(s.s.parties) }

type seenKey struct {
	round     uint32
	from      PartyID
	broadcast bool
}

// session is the protocol-independent core of Session. It wraps the
// library's MultiHandler and screens every message before the handler sees
// it.
type session struct {
	mu         sync.Mutex
	proto      Protocol
	id         []byte
	self       PartyID
	parties    []PartyID // sorted, includes self
	maxPayload int
	log        *slog.Logger
	finish     func(any) (any, error)

	h       *libproto.MultiHandler
	ssid    []byte // the library's transcript ID, from our first message
	libID   string // the library's protocol ID, from our first message
	current int    // index in rounds[proto] of the round being collected

	ourBV  map[uint32][]byte             // our broadcast echo hash per round
	peerBV map[uint32]map[PartyID][]byte // peers' echo hashes not yet checked
	seen   map[seenKey]struct{}
	out    []*pb.MpcEnvelope

	done   bool
	result any
	err    error
}

// startSession builds the library handler for start and runs the protocol's
// first round. finish converts the library's result.
func (e *Engine) startSession(proto Protocol, id []byte, self PartyID, parties []PartyID,
	start libproto.StartFunc, finish func(any) (any, error)) (*session, error) {
	s := &session{
		proto:      proto,
		id:         slices.Clone(id),
		self:       self,
		parties:    parties,
		maxPayload: e.cfg.MaxPayloadBytes,
		log:        e.log.With("protocol", proto.String(), "session", hex.EncodeToString(id), "self", string(self)),
		finish:     finish,
		current:    -1,
		ourBV:      make(map[uint32][]byte),
		peerBV:     make(map[uint32]map[PartyID][]byte),
		seen:       make(map[seenKey]struct{}),
	}
	h, err := newHandler(start, s.id)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidParams, err)
	}
	s.h = h
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drain()
	if !s.done && s.ssid == nil {
		s.fail(fmt.Errorf("%w: protocol sent no first message", ErrLocal))
	}
	s.log.Debug("mpc session started")
	return s, nil
}

func newHandler(start libproto.StartFunc, id []byte) (h *libproto.MultiHandler, err error) {
	defer func() {
		if r := recover(); r != nil {
			h, err = nil, errors.New("protocol panicked while starting")
		}
	}()
	return libproto.NewMultiHandler(start, id)
}

func (s *session) accept(env *pb.MpcEnvelope) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := PartyID(env.GetFrom())
	reject := func(sentinel error, format string, args ...any) error {
		err := &MessageError{Party: from, Round: env.GetRound(), Err: sentinel, Detail: fmt.Sprintf(format, args...)}
		s.log.Debug("mpc message rejected", "from", string(from), "round", env.GetRound(), "err", err)
		return err
	}
	if s.done {
		return reject(ErrSessionDone, "")
	}
	if err := validateEnvelope(env, s.maxPayload); err != nil {
		return reject(err.sentinel, "%s", err.detail)
	}
	if !bytes.Equal(env.GetSessionId(), s.id) {
		return reject(ErrWrongSession, "session ID differs")
	}
	if p := protocolFromWire(env.GetProtocol()); p != s.proto {
		return reject(ErrWrongSession, "protocol %s, session runs %s", p, s.proto)
	}
	if from == s.self || !slices.Contains(s.parties, from) {
		return reject(ErrUnknownParty, "sender is not a peer in this session")
	}
	if a := env.GetAbort(); a != nil {
		if len(env.GetSsid()) != 0 && !bytes.Equal(env.GetSsid(), s.ssid) {
			return reject(ErrWrongSession, "transcript (SSID) differs")
		}
		culprits := make([]PartyID, len(a.GetCulprits()))
		for i, c := range a.GetCulprits() {
			culprits[i] = PartyID(c)
		}
		s.fail(&PeerAbortError{Party: from, Culprits: culprits, Protocol: s.proto})
		return s.err
	}
	if !bytes.Equal(env.GetSsid(), s.ssid) {
		return reject(ErrWrongSession, "transcript (SSID) differs: the parties disagree on the session's inputs")
	}
	if !env.GetBroadcast() && PartyID(env.GetTo()) != s.self {
		return reject(ErrMisrouted, "addressed to %q", env.GetTo())
	}
	sh, idx, ok := shape(s.proto, env.GetRound())
	if !ok || (env.GetBroadcast() && !sh.broadcast) || (!env.GetBroadcast() && !sh.direct) {
		return reject(ErrMalformed, "%s has no such message in round %d", s.proto, env.GetRound())
	}
	if idx < s.current {
		return reject(ErrRoundClosed, "session is in round %d", rounds[s.proto][s.current].number)
	}
	key := seenKey{env.GetRound(), from, env.GetBroadcast()}
	if _, dup := s.seen[key]; dup {
		return reject(ErrDuplicate, "")
	}
	if idx > s.current+1 {
		return reject(ErrRoundNotOpen, "session is in round %d", rounds[s.proto][s.current].number)
	}
	if err := cbor.Valid(env.GetPayload()); err != nil {
		return reject(ErrMalformed, "payload is not well-formed CBOR")
	}
	s.seen[key] = struct{}{}

	// The echo check of the reliable broadcast: every message of round r
	// carries its sender's hash of all round r-1 broadcasts. The library
	// checks it too, but cannot say who disagreed.
	if ours, known := s.ourBV[env.GetRound()]; known {
		if !bytes.Equal(ours, env.GetBroadcastVerification()) {
			s.fail(s.abortError([]PartyID{from}, "broadcast echo disagrees: the sender saw other broadcasts", nil))
			return s.err
		}
	} else {
		m := s.peerBV[env.GetRound()]
		if m == nil {
			m = make(map[PartyID][]byte)
			s.peerBV[env.GetRound()] = m
		}
		m[from] = env.GetBroadcastVerification()
	}

	msg := &libproto.Message{
		SSID:                  s.ssid,
		From:                  party.ID(from),
		To:                    party.ID(env.GetTo()),
		Protocol:              s.libID,
		Data:                  env.GetPayload(),
		Broadcast:             env.GetBroadcast(),
		BroadcastVerification: env.GetBroadcastVerification(),
	}
	setRound(&msg.RoundNumber, env.GetRound())
	if err := s.deliver(msg); err != nil {
		s.fail(s.abortError([]PartyID{from}, "protocol panicked on the message", err))
		return s.err
	}
	s.drain()
	if s.done {
		return s.err
	}
	return nil
}

// setRound stores a round number into the library's round.Number, which
// lives in an internal package and so cannot be named here.
func setRound[N ~uint16](dst *N, n uint32) { *dst = N(n) }

// deliver hands msg to the library. Messages were screened before, so a
// panic is a library bug; recover turns it into an error rather than a
// crash of the whole node.
func (s *session) deliver(msg *libproto.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("library panic")
		}
	}()
	s.h.Accept(msg)
	return nil
}

// drain collects what the handler produced and notices when it finished.
// The handler's channel holds 2N messages; the round window in accept keeps
// one Accept from producing more than two rounds' worth (N each), so the
// handler never blocks on it.
func (s *session) drain() {
	for !s.done {
		select {
		case m, ok := <-s.h.Listen():
			if !ok {
				s.finishHandler()
				return
			}
			s.emit(m)
		default:
			return
		}
	}
}

// emit turns one library message into an outgoing envelope.
func (s *session) emit(m *libproto.Message) {
	if m.RoundNumber == 0 {
		return // the library's abort notice; fail sends ours
	}
	n := uint32(m.RoundNumber)
	sh, idx, ok := shape(s.proto, n)
	direct := !m.Broadcast
	if !ok || (m.Broadcast && (!sh.broadcast || m.To != "")) || (direct && (!sh.direct || m.To == "")) {
		s.fail(fmt.Errorf("%w: library sent a round-%d message that the round table does not allow", ErrLocal, n))
		return
	}
	if s.ssid == nil {
		s.ssid = slices.Clone(m.SSID)
		s.libID = m.Protocol
	} else if !bytes.Equal(s.ssid, m.SSID) || s.libID != m.Protocol {
		s.fail(fmt.Errorf("%w: library changed the session transcript", ErrLocal))
		return
	}
	if idx > s.current {
		s.current = idx
	}
	if _, known := s.ourBV[n]; !known {
		bv := slices.Clone(m.BroadcastVerification)
		s.ourBV[n] = bv
		var bad []PartyID
		for p, theirs := range s.peerBV[n] {
			if !bytes.Equal(theirs, bv) {
				bad = append(bad, p)
			}
		}
		delete(s.peerBV, n)
		if len(bad) > 0 {
			slices.Sort(bad)
			s.fail(s.abortError(bad, "broadcast echo disagrees: the sender saw other broadcasts", nil))
			return
		}
	}
	s.out = append(s.out, &pb.MpcEnvelope{
		Version:               EnvelopeVersion,
		SessionId:             s.id,
		Protocol:              s.proto.wire(),
		Round:                 n,
		From:                  string(s.self),
		To:                    string(m.To),
		Broadcast:             m.Broadcast,
		Payload:               m.Data,
		BroadcastVerification: m.BroadcastVerification,
		Ssid:                  s.ssid,
	})
}

// finishHandler records the handler's result or error.
func (s *session) finishHandler() {
	res, err := s.h.Result()
	if err != nil {
		var le libproto.Error
		if !errors.As(err, &le) {
			s.fail(fmt.Errorf("%w: %s failed: %v", ErrLocal, s.proto, err))
			return
		}
		var culprits []PartyID
		for _, c := range le.Culprits {
			if PartyID(c) != s.self && !slices.Contains(culprits, PartyID(c)) {
				culprits = append(culprits, PartyID(c))
			}
		}
		if len(culprits) == 0 && len(le.Culprits) > 0 {
			s.fail(fmt.Errorf("%w: %s failed: %v", ErrLocal, s.proto, le.Err))
			return
		}
		s.fail(s.abortError(culprits, fmt.Sprint(le.Err), le.Err))
		return
	}
	out, err := s.finish(res)
	if err != nil {
		s.fail(fmt.Errorf("%w: %s result: %v", ErrLocal, s.proto, err))
		return
	}
	s.result = out
	s.done = true
	s.log.Debug("mpc session finished")
}

func (s *session) abortError(culprits []PartyID, reason string, err error) *AbortError {
	e := &AbortError{Culprits: culprits, Protocol: s.proto, Reason: reason, Err: err}
	if len(culprits) > 0 {
		e.Party = culprits[0]
	}
	return e
}

// fail ends the session with err and, unless a peer's abort notice caused
// it, queues an abort notice for the other parties.
func (s *session) fail(err error) {
	if s.done {
		return
	}
	s.done = true
	s.err = err
	s.log.Warn("mpc session failed", "err", err)
	var peer *PeerAbortError
	if errors.As(err, &peer) {
		return
	}
	notice := &pb.MpcAbort{}
	var ab *AbortError
	if errors.As(err, &ab) {
		for _, c := range ab.Culprits {
			notice.Culprits = append(notice.Culprits, string(c))
		}
	}
	s.out = append(s.out, &pb.MpcEnvelope{
		Version:   EnvelopeVersion,
		SessionId: s.id,
		Protocol:  s.proto.wire(),
		From:      string(s.self),
		Broadcast: true,
		Ssid:      s.ssid,
		Abort:     notice,
	})
}

func (s *session) outgoing() []*pb.MpcEnvelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.out
	s.out = nil
	return out
}

func (s *session) isDone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

func (s *session) outcome() (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		return nil, ErrNotDone
	}
	return s.result, s.err
}

func (s *session) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		s.done = true
		s.err = ErrClosed
		s.log.Debug("mpc session closed")
	}
}
