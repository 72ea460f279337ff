package actors

import (
	"fmt"
	"testing"
)

func entry(i uint64) []byte { return []byte(fmt.Sprintf("e%d", i)) }

// TestEntryBufOffsets: get, at and trim address entries by segment offset,
// and bytes follows what is held.
func TestEntryBufOffsets(t *testing.T) {
	var b entryBuf
	b.reset(10)
	for i := uint64(10); i < 20; i++ {
		b.append([][]byte{entry(i)})
	}
	if b.end() != 20 || b.bytes != 10*3 {
		t.Fatalf("end %d bytes %d, want 20 and 30", b.end(), b.bytes)
	}
	b.trim(5) // below base: nothing
	b.trim(14)
	if b.base != 14 || b.end() != 20 || b.bytes != 6*3 {
		t.Fatalf("after trim(14): base %d end %d bytes %d", b.base, b.end(), b.bytes)
	}
	got := b.get(15, 18)
	for k, e := range got {
		if want := entry(15 + uint64(k)); string(e) != string(want) {
			t.Fatalf("get(15,18)[%d] = %q, want %q", k, e, want)
		}
	}
	if string(b.at(19)) != "e19" {
		t.Fatalf("at(19) = %q", b.at(19))
	}
	b.trim(25) // past the end: empties it
	if b.base != 20 || len(b.ents) != 0 || b.bytes != 0 {
		t.Fatalf("after trim(25): base %d len %d bytes %d", b.base, len(b.ents), b.bytes)
	}
}

// TestEntryBufNeverRewritesHandedOutEntries: a batch handed to the WAL or
// the transport keeps its entries while the buffer trims and grows under
// it, and it cannot grow into the buffer's array.
func TestEntryBufNeverRewritesHandedOutEntries(t *testing.T) {
	var b entryBuf
	b.reset(0)
	var next uint64
	add := func(n int) {
		for range n {
			b.append([][]byte{entry(next)})
			next++
		}
	}
	add(100)
	held := b.get(40, 60)
	if cap(held) != len(held) {
		t.Fatalf("a handed-out batch has capacity %d beyond its %d entries", cap(held), len(held))
	}
	for round := 0; round < 50; round++ {
		b.trim(b.end() - 30)
		add(97)
	}
	for k, e := range held {
		if want := entry(40 + uint64(k)); string(e) != string(want) {
			t.Fatalf("held[%d] = %q after trims and growth, want %q", k, e, want)
		}
	}
	for i := b.base; i < b.end(); i++ {
		if want := entry(i); string(b.at(i)) != string(want) {
			t.Fatalf("at(%d) = %q, want %q", i, b.at(i), want)
		}
	}
}

// TestEntryBufCopiesRarely: in the leader's steady state (a round of
// writes in, the replicated prefix trimmed) the buffer allocates a new
// array once per many rounds, not once per trim.
func TestEntryBufCopiesRarely(t *testing.T) {
	var b entryBuf
	b.reset(0)
	round := make([][]byte, 16)
	for i := range round {
		round[i] = []byte("x")
	}
	const rounds = 1000
	allocs := testing.AllocsPerRun(5, func() {
		for range rounds {
			b.append(round)
			b.trim(b.end() - 32) // two rounds in flight
		}
	})
	// a new array of 1024 slots lasts 1024-32 appends, 62 rounds
	if perRound := allocs / rounds; perRound > 0.05 {
		t.Fatalf("%.3f allocations per round, want one per tens of rounds", perRound)
	}
}

// TestEntryBufLetsGoOfTrimmedPayload: what trim drops stays in the array
// only up to maxDeadBytes; past that the live entries move to a new array
// and the old one is left to the slices handed out (an idle leader keeps
// no more than that of payload nobody needs).
func TestEntryBufLetsGoOfTrimmedPayload(t *testing.T) {
	var b entryBuf
	b.reset(0)
	big := make([]byte, 64<<10)
	for range 3 * maxDeadBytes / len(big) {
		b.append([][]byte{big})
		b.trim(b.end() - 1) // one live entry
		if b.dead > maxDeadBytes {
			t.Fatalf("the array holds %d bytes of trimmed payload, more than %d", b.dead, maxDeadBytes)
		}
	}
	if len(b.ents) != 1 || b.bytes != len(big) {
		t.Fatalf("live %d entries, %d bytes; want 1 entry of %d", len(b.ents), b.bytes, len(big))
	}
}
