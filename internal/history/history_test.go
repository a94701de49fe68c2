package history

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The checker is only worth its passes if it fails on bad histories. Each
// case below breaks one guarantee by hand in an otherwise correct History
// and requires the checker to name it.

// payload returns the payload of the publisher's counter-th publish.
func payload(publisher uint32, counter uint64) []byte {
	b := make([]byte, 32)
	EncodePayload(b, publisher, counter)
	return b
}

// goodHistory is a correct history of topic "t" (ring size 4): publishers 1
// and 2 publish alternately, one at a time, five items in all; subscriber A
// subscribed before anything was published and read everything; B
// subscribed after the second publish had returned and read the rest.
func goodHistory() *History {
	const page = 42
	pubs := []PubEvent{
		{Topic: "t", Publisher: 1, Counter: 1, Call: 10, Return: 11},
		{Topic: "t", Publisher: 2, Counter: 1, Call: 12, Return: 13},
		{Topic: "t", Publisher: 1, Counter: 2, Call: 20, Return: 21},
		{Topic: "t", Publisher: 2, Counter: 2, Call: 22, Return: 23},
		{Topic: "t", Publisher: 1, Counter: 3, Call: 24, Return: 25},
	}
	item := func(seq uint64, tick uint64, p PubEvent) RecvEvent {
		return RecvEvent{Seq: seq, Page: page, Tick: tick, Value: payload(p.Publisher, p.Counter)}
	}
	a := &SubHistory{Name: "A", Topic: "t", OpenCall: 1, OpenReturn: 2, KeepsUp: true, ReadToEnd: true}
	for i, p := range pubs {
		a.Items = append(a.Items, item(uint64(i+1), 30+uint64(i), p))
	}
	b := &SubHistory{Name: "B", Topic: "t", OpenCall: 14, OpenReturn: 15, KeepsUp: true, ReadToEnd: true}
	for i, p := range pubs[2:] {
		b.Items = append(b.Items, item(uint64(i+3), 40+uint64(i), p))
	}
	return &History{RingSize: 4, Pubs: pubs, Subs: []*SubHistory{a, b}}
}

func TestHistoryCheckerAcceptsGoodHistory(t *testing.T) {
	r := goodHistory().Check()
	require.True(t, r.OK(), "%s", r)

	// Loss that the ring explains is fine too: with ring size 1, B starts
	// at 3 and sees 5 only after 4 was overwritten.
	h := goodHistory()
	h.RingSize = 1
	b := h.Subs[1]
	b.KeepsUp = false
	b.Items = slices.Delete(b.Items, 1, 2)
	b.Items[1].Missed = 1
	r = h.Check()
	require.True(t, r.OK(), "%s", r)
}

func TestHistoryCheckerFindsViolations(t *testing.T) {
	cases := []struct {
		name    string
		kind    string
		breakIt func(h *History)
	}{
		{"an item delivered twice", ViolDuplicate, func(h *History) {
			a := h.Subs[0]
			a.Items = slices.Insert(a.Items, 2, a.Items[1])
		}},
		{"one publish at two sequences", ViolDuplicate, func(h *History) {
			// B sees 4 and 5 carrying the same value.
			h.Subs[1].Items[2].Value = h.Subs[1].Items[1].Value
		}},
		{"items reordered", ViolNotIncreasing, func(h *History) {
			a := h.Subs[0].Items
			a[1], a[2] = a[2], a[1]
		}},
		{"subscribers disagree on a sequence's value", ViolDiverge, func(h *History) {
			a := h.Subs[0].Items
			a[2].Value, a[3].Value = a[3].Value, a[2].Value
		}},
		{"a publish that returned first got the higher sequence", ViolRealTime, func(h *History) {
			// Everyone agrees that publisher 2's second item (called at 22,
			// after publisher 1's second returned at 21) came first.
			for _, s := range h.Subs {
				for i := range s.Items {
					switch s.Items[i].Seq {
					case 3:
						s.Items[i].Value = payload(2, 2)
					case 4:
						s.Items[i].Value = payload(1, 2)
					}
				}
			}
		}},
		{"a publisher's items out of its order", ViolPublisherOrder, func(h *History) {
			// Publisher 1's first two calls overlap each other and all the
			// others (a broken Recorder, or an engine that reorders one
			// publisher's concurrent publishes): real-time order holds, only
			// the publisher's own order is broken.
			h.Pubs[0].Call, h.Pubs[0].Return = 10, 26
			h.Pubs[2].Call, h.Pubs[2].Return = 9, 26
			for _, s := range h.Subs {
				for i := range s.Items {
					switch s.Items[i].Seq {
					case 1:
						s.Items[i].Value = payload(1, 2)
					case 3:
						s.Items[i].Value = payload(1, 1)
					}
				}
			}
		}},
		{"Missed too small after a gap", ViolMissed, func(h *History) {
			a := h.Subs[0]
			a.KeepsUp = false
			h.RingSize = 1
			a.Items = slices.Delete(a.Items, 1, 2) // 1, 3, 4, 5 with Missed 0
		}},
		{"Missed too large", ViolMissed, func(h *History) {
			h.RingSize = 1
			h.Subs[1].KeepsUp = false
			h.Subs[1].Items[2].Missed = 1
		}},
		{"first item's Missed beyond sequence 1", ViolMissed, func(h *History) {
			h.RingSize = 1
			h.Subs[0].KeepsUp = false
			h.Subs[0].Items[0].Missed = 1
		}},
		{"a subscription that keeps up lost an item", ViolKeptUpLoss, func(h *History) {
			a := h.Subs[0]
			a.Items = slices.Delete(a.Items, 1, 2)
			a.Items[1].Missed = 1
			h.RingSize = 0 // so that only the keep-up rule can object
		}},
		{"an item reported lost while the ring still held it", ViolSpuriousLoss, func(h *History) {
			a := h.Subs[0]
			a.KeepsUp = false
			a.Items = slices.Delete(a.Items, 1, 2)
			a.Items[1].Missed = 1 // 2 is lost, though 2+4 was never published
		}},
		{"a new subscription received an older item", ViolWindow, func(h *History) {
			// B subscribed after 1 and 2 were published but also got 2.
			b := h.Subs[1]
			b.Items = slices.Insert(b.Items, 0, RecvEvent{Seq: 2, Page: 42, Tick: 39, Value: payload(2, 1)})
		}},
		{"a new subscription skipped an item published after it subscribed", ViolWindow, func(h *History) {
			// A subscribed before anything was published but starts at 2.
			a := h.Subs[0]
			a.Items = a.Items[1:]
		}},
		{"the last items never delivered", ViolTail, func(h *History) {
			h.Subs[1].Items = h.Subs[1].Items[:2]
		}},
		{"nothing delivered though items followed", ViolTail, func(h *History) {
			h.Subs[1].Items = nil
		}},
		{"an item nobody published", ViolPhantom, func(h *History) {
			h.Subs[0].Items[4].Value = payload(9, 1)
		}},
		{"an item published to another topic", ViolPhantom, func(h *History) {
			h.Pubs = append(h.Pubs, PubEvent{Topic: "other", Publisher: 3, Counter: 1, Call: 26, Return: 27})
			h.Subs[0].Items = append(h.Subs[0].Items, RecvEvent{Seq: 6, Page: 42, Tick: 40, Value: payload(3, 1)})
		}},
		{"a failed publish delivered", ViolFailedDeliver, func(h *History) {
			h.Pubs[4].Failed = true
		}},
		{"a sequence beyond every publish", ViolNeverClaimed, func(h *History) {
			a := h.Subs[0]
			a.Items[4].Seq = 9
			a.Items[4].Missed = 3
		}},
		{"an item delivered before its publish started", ViolCausality, func(h *History) {
			h.Subs[0].Items[0].Tick = 5
		}},
		{"a torn item", ViolTorn, func(h *History) {
			v := slices.Clone(h.Subs[1].Items[1].Value)
			v[14] ^= 1
			h.Subs[1].Items[1].Value = v
		}},
		{"an item mixed from two payloads", ViolTorn, func(h *History) {
			a, b := payload(1, 2), payload(2, 2)
			mixed := append(slices.Clone(a[:16]), b[16:]...)
			h.Subs[0].Items[2].Value = mixed
		}},
		{"a truncated item", ViolTorn, func(h *History) {
			h.Subs[0].Items[3].Value = h.Subs[0].Items[3].Value[:10]
		}},
		{"an item delivered after Close", ViolAfterClose, func(h *History) {
			h.Subs[1].CloseCall = 41 // B's last item came at 42
		}},
		{"the page changes", ViolPage, func(h *History) {
			h.Subs[1].Items[0].Page = 43
		}},
		{"a publish recorded twice", ViolHistory, func(h *History) {
			h.Pubs = append(h.Pubs, h.Pubs[0])
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := goodHistory()
			tc.breakIt(h)
			r := h.Check()
			assert.True(t, r.Has(tc.kind), "the checker did not Report %q; it said:\n%s", tc.kind, r)
			t.Logf("%s", r)
		})
	}
}

// The Recorder's payloads survive a round trip and detect any single-byte
// change.
func TestHistoryPayloadChecksum(t *testing.T) {
	for _, size := range []int{PayloadMin, 32, 1024} {
		b := make([]byte, size)
		EncodePayload(b, 7, 123456789)
		p, c, ok := DecodePayload(b)
		require.True(t, ok)
		require.Equal(t, uint32(7), p)
		require.Equal(t, uint64(123456789), c)
		for i := range b {
			b[i] ^= 0x40
			_, _, ok := DecodePayload(b)
			require.False(t, ok, "size %d: a change at byte %d went unnoticed", size, i)
			b[i] ^= 0x40
		}
	}
}
