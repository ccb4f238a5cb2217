package actors

import "testing"

// TestClaimWaitsForInFlightReserves: a Reserve of this node that committed
// leaves the replica's depth before its proposal returns, so for a moment
// it counts twice. A claim that finds none left while Reserves are in
// flight is told to look again when one returns, not that the pool is
// empty; with nothing in flight, empty is empty.
func TestClaimWaitsForInFlightReserves(t *testing.T) {
	p := newSlowPath(1)
	if ok, _ := p.claim("k", 2); !ok {
		t.Fatal("a claim on a pool of 2 was refused")
	}
	// The first Reserve committed (the replica shows 1 left) but has not
	// returned: 1 - 1 in flight looks like none.
	ok, again := p.claim("k", 1)
	if ok || again == nil {
		t.Fatalf("claim beside a Reserve in flight = %v, %v; want a channel to look again", ok, again)
	}
	select {
	case <-again:
		t.Fatal("the channel closed before any Reserve returned")
	default:
	}
	p.unclaim("k")
	select {
	case <-again:
	default:
		t.Fatal("the channel did not close when the Reserve returned")
	}
	if ok, _ := p.claim("k", 1); !ok {
		t.Fatal("the claim looking again was refused, with one presignature left and nothing in flight")
	}
	p.unclaim("k")
	if ok, again := p.claim("k", 0); ok || again != nil {
		t.Fatalf("claim on an empty pool with nothing in flight = %v, %v; want empty", ok, again)
	}
}
