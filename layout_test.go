package topics

import (
	"testing"
	"unsafe"

	"github.com/ringbus/topics/internal/ring"
)

// A subscription is two cache lines: the fields its reader touches for
// every item fill the first, and everything else the second. It is 128
// bytes, a size class the allocator aligns to 128, so no other
// subscription's bytes share its lines; with its wake-up channel (an hchan of
// 96 bytes) it costs under 256 bytes.
func TestSubscriptionLayout(t *testing.T) {
	var s Subscription[Value]
	if hotEnd := unsafe.Offsetof(s.hot) + unsafe.Sizeof(s.hot); hotEnd > ring.CacheLineSize {
		t.Errorf("hot fields end at byte %d, past the first cache line", hotEnd)
	}
	if off := unsafe.Offsetof(s.waiter); off < ring.CacheLineSize {
		t.Errorf("the waiter, which publishers write, is at byte %d, in the hot line", off)
	}
	if size := unsafe.Sizeof(s); size != 2*ring.CacheLineSize {
		t.Errorf("a subscription is %d bytes, not two cache lines", size)
	}
}
