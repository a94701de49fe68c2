package topics

import (
	"testing"
	"unsafe"

	"github.com/ringbus/topics/internal/ring"
)

// A subscription's hot fields fill its first cache line at most, and enough
// cold bytes follow them that no cache line holds hot bytes of two
// subscriptions next to each other in memory; and it costs under 256 bytes
// with its wake-up channel (96 bytes, an hchan).
func TestSubscriptionLayout(t *testing.T) {
	var s Subscription[Value]
	hotEnd := unsafe.Offsetof(s.hot) + unsafe.Sizeof(s.hot)
	size := unsafe.Sizeof(s)
	if hotEnd > ring.CacheLineSize {
		t.Errorf("hot fields end at byte %d, past the first cache line", hotEnd)
	}
	if size-hotEnd < ring.CacheLineSize {
		t.Errorf("only %d cold bytes after the hot ones (size %d): a neighbour's hot bytes can share a line", size-hotEnd, size)
	}
	if queued := unsafe.Offsetof(s.waiter) + 16; size-queued < ring.CacheLineSize {
		t.Errorf("the waiter's written words end %d bytes before the next subscription", size-queued)
	}
	if size+96 >= 256 {
		t.Errorf("a subscription is %d bytes plus its channel", size)
	}
}
