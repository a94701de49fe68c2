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
//
// The layout is planned for 64-bit platforms. On 32-bit ones pointers are
// half the size: the hot fields still come first and fill at most a line,
// and the whole is smaller.
func TestSubscriptionLayout(t *testing.T) {
	var s Subscription[Value]
	if hotEnd := unsafe.Offsetof(s.hot) + unsafe.Sizeof(s.hot); hotEnd > ring.CacheLineSize {
		t.Errorf("hot fields end at byte %d, past the first cache line", hotEnd)
	}
	if unsafe.Sizeof(uintptr(0)) < 8 {
		if size := unsafe.Sizeof(s); size > 2*ring.CacheLineSize {
			t.Errorf("a subscription is %d bytes, more than two cache lines", size)
		}
		return
	}
	if off := unsafe.Offsetof(s.waiter); off < ring.CacheLineSize {
		t.Errorf("the waiter, which publishers write, is at byte %d, in the hot line", off)
	}
	if size := unsafe.Sizeof(s); size != 2*ring.CacheLineSize {
		t.Errorf("a subscription is %d bytes, not two cache lines", size)
	}
}

// A subscription's statistics find its hot counts by a fixed offset
// (subStats.hot) computed once from Subscription[struct{}]; it
// must be right for every type parameter.
//
// Breaks if a field whose size depends on T lies between hot and stats in
// Subscription (e.g. a T beside the waiter), or if hotFromStats is off.
func TestSubStatsHotLayout(t *testing.T) {
	check := func(name string, stats *subStats, hot *hotCounts) {
		t.Helper()
		if got := stats.hot(); got != hot {
			t.Errorf("%s: stats.hot() = %p, &s.hot = %p", name, got, hot)
		}
	}
	v := new(Subscription[Value])
	check("Subscription[Value]", &v.stats, &v.hot)
	p := new(Subscription[struct{ a, b int64 }])
	check("Subscription[struct{ a, b int64 }]", &p.stats, &p.hot)
	// Through the pointer, the counts are the subscription's own.
	p.stats.hot().d = 42
	if p.hot.d != 42 {
		t.Errorf("wrote d through stats.hot(), subscription has %d", p.hot.d)
	}
}
