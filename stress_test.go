package topics_test

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/internal/history"
)

// stressSizes are the sizes of the stress scenarios; stress_sizes_test.go
// and stress_sizes_full_test.go set them.
type stressSizes struct {
	noLossPublishers, noLossEach, noLossSubscribers int
	lappingPublishers, lappingEach                  int
	memoryItems                                     int
	lifecycleSeeds, lifecycleOps                    int
	deadline                                        time.Duration // for each scenario to finish
}

const (
	stressPayload  = 32 // bytes of an ordinary payload
	stressMaxValue = 64 // the caches' MaxValueSize
	failEvery      = 97 // every failEvery-th publish of a publisher is refused
)

// stressPublish is publish number i (1-based) of a stress publisher. Every
// failEvery-th is made to fail, alternately too large and with a cancelled
// context: a refused publish must never be delivered, nor take a sequence.
func stressPublish(ctx context.Context, p *history.PubRecorder, c *topics.Cache, topic string, i int) error {
	if !refused(i) {
		if err := p.Publish(ctx, c, topic, stressPayload); err != nil {
			return fmt.Errorf("publisher %d, publish %d: %w", p.ID(), i, err)
		}
		return nil
	}
	if i/failEvery%2 == 0 {
		err := p.Publish(ctx, c, topic, stressMaxValue+1)
		if !errors.Is(err, topics.ErrValueTooLarge) {
			return fmt.Errorf("publisher %d, oversized publish %d: got %v, want ErrValueTooLarge", p.ID(), i, err)
		}
		return nil
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.Publish(cancelled, c, topic, stressPayload); !errors.Is(err, context.Canceled) {
		return fmt.Errorf("publisher %d, publish %d with a cancelled context: got %v, want context.Canceled", p.ID(), i, err)
	}
	return nil
}

// refused reports whether publish i of a stress publisher is made to fail.
func refused(i int) bool { return i%failEvery == 0 }

// accepted returns how many of publishes 1..each succeed.
func accepted(each int) int { return each - each/failEvery }

// ceilPow2 returns the least power of two at least n.
func ceilPow2(n int) int { return 1 << bits.Len(uint(n-1)) }

// group runs goroutines and collects their errors.
type group struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func (g *group) go_(f func() error) {
	g.wg.Go(func() {
		if err := f(); err != nil {
			g.mu.Lock()
			g.errs = append(g.errs, err)
			g.mu.Unlock()
		}
	})
}

func (g *group) wait() error {
	g.wg.Wait()
	return errors.Join(g.errs...)
}

// Scenario 1: many publishers, many subscribers, and a ring that holds
// everything, so that no subscriber may lose anything. Half the subscribers
// join before the first publish, half in the middle of the stream.
func TestStressNoLoss(t *testing.T) {
	var (
		publishers  = sizes.noLossPublishers
		each        = sizes.noLossEach
		subscribers = sizes.noLossSubscribers
		total       = publishers * accepted(each)
		ring        = ceilPow2(total)
	)
	start := time.Now()
	c := newCache(t, topics.WithRingSize(ring), topics.WithMaxValueSize(stressMaxValue))
	rec := history.NewRecorder(ring)
	ctx, cancel := context.WithTimeout(context.Background(), sizes.deadline)
	defer cancel()

	var readers group
	read := func(s *history.SubRecorder) error {
		defer s.Close()
		return s.ReadUntil(ctx, uint64(total))
	}
	for i := range subscribers / 2 {
		s, err := rec.Subscribe(ctx, c, "t", fmt.Sprintf("early-%d", i), true, true)
		require.NoError(t, err)
		readers.go_(func() error { return read(s) })
	}
	// Publisher 0 lets the late subscribers in a third of the way through,
	// and waits for them to have subscribed, so that they join while items
	// are being published and then receive everything after their start.
	midway := make(chan struct{})
	joined := make(chan struct{}, subscribers)
	late := subscribers - subscribers/2
	for i := subscribers / 2; i < subscribers; i++ {
		readers.go_(func() error {
			select {
			case <-midway:
			case <-ctx.Done():
				return ctx.Err()
			}
			s, err := rec.Subscribe(ctx, c, "t", fmt.Sprintf("late-%d", i), true, true)
			joined <- struct{}{}
			if err != nil {
				return err
			}
			return read(s)
		})
	}
	var pubs group
	for p := range publishers {
		pr := rec.Publisher()
		pubs.go_(func() error {
			for i := 1; i <= each; i++ {
				if err := stressPublish(ctx, pr, c, "t", i); err != nil {
					return err
				}
				if p == 0 && i == each/3 {
					close(midway)
					if err := receiveN(ctx, joined, late); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	require.NoError(t, pubs.wait())
	require.NoError(t, readers.wait())
	h := rec.History()
	history.Require(t, h)
	t.Logf("%d publishers × %d publishes (%d refused), %d subscribers, ring %d: %d items delivered without loss in %v",
		publishers, each, publishers*(each-accepted(each)), subscribers, ring, delivered(h), time.Since(start).Round(time.Millisecond))
}

// receiveN receives n values from ch, or returns ctx.Err().
func receiveN(ctx context.Context, ch <-chan struct{}, n int) error {
	for range n {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func delivered(h *history.History) (n int) {
	for _, s := range h.Subs {
		n += len(s.Items)
	}
	return n
}

// Scenario 2: rings small enough to be lapped all the time, several
// publishers, subscribers of every speed; every loss must be reported
// exactly. In the paced variant the publishers wait for one subscriber (the
// keeper) to stay within a ring of them, and the keeper must lose nothing.
func TestStressLapping(t *testing.T) {
	for _, ring := range []int{2, 4, 8, 64} {
		for _, paced := range []bool{false, true} {
			name := fmt.Sprintf("ring %d", ring)
			if paced {
				name += " paced"
			}
			t.Run(name, func(t *testing.T) { stressLapping(t, ring, paced) })
		}
	}
}

func stressLapping(t *testing.T, ring int, paced bool) {
	var (
		publishers = sizes.lappingPublishers
		each       = sizes.lappingEach
		total      = publishers * accepted(each)
	)
	start := time.Now()
	c := newCache(t, topics.WithRingSize(ring), topics.WithMaxValueSize(stressMaxValue))
	rec := history.NewRecorder(ring)
	ctx, cancel := context.WithTimeout(context.Background(), sizes.deadline)
	defer cancel()

	// tokens paces the publishers: one per item the keeper may fall behind.
	var tokens chan struct{}
	if paced {
		tokens = make(chan struct{}, ring)
		for range ring {
			tokens <- struct{}{}
		}
	}
	published := make(chan struct{}) // closed when every publisher is done
	midway := make(chan struct{})    // publisher 0 is halfway: the late reader joins
	joined := make(chan struct{}, 1) // and publisher 0 goes on once it has

	var readers group
	subscribe := func(name string, keepsUp, toEnd bool) *history.SubRecorder {
		s, err := rec.Subscribe(ctx, c, "t", name, keepsUp, toEnd)
		require.NoError(t, err)
		return s
	}
	// Readers that read as fast as they can.
	for i := range 2 {
		s := subscribe(fmt.Sprintf("fast-%d", i), false, true)
		readers.go_(func() error {
			defer s.Close()
			return s.ReadUntil(ctx, uint64(total))
		})
	}
	// A reader that does some work for each item.
	slow := subscribe("slow", false, true)
	readers.go_(func() error {
		defer slow.Close()
		for {
			it, err := slow.Next(ctx)
			if err != nil {
				return err
			}
			if it.Sequence >= uint64(total) {
				return nil
			}
			for range 16 {
				_ = history.FNV64a(it.Value.Bytes())
			}
			runtime.Gosched()
		}
	})
	// A reader that reads nothing until every publisher is done: it must
	// find the newest ring items and be told it missed all the others.
	stalled := subscribe("stalled", false, true)
	readers.go_(func() error {
		defer stalled.Close()
		select {
		case <-published:
		case <-ctx.Done():
			return ctx.Err()
		}
		return stalled.ReadUntil(ctx, uint64(total))
	})
	// A reader that leaves early.
	quitter := subscribe("quitter", false, false)
	readers.go_(func() error {
		defer quitter.Close()
		for range 100 {
			it, err := quitter.Next(ctx)
			if err != nil || it.Sequence == uint64(total) {
				return err
			}
		}
		// Once closed, it receives nothing more (the checker would see it).
		quitter.Close()
		if _, err := quitter.Next(ctx); !errors.Is(err, topics.ErrClosed) {
			return fmt.Errorf("quitter: Next after Close returned %v", err)
		}
		return nil
	})
	// A reader that joins in the middle.
	readers.go_(func() error {
		select {
		case <-midway:
		case <-ctx.Done():
			return ctx.Err()
		}
		s, err := rec.Subscribe(ctx, c, "t", "late", false, true)
		joined <- struct{}{}
		if err != nil {
			return err
		}
		defer s.Close()
		return s.ReadUntil(ctx, uint64(total))
	})
	// The keeper, which the publishers wait for when paced.
	if paced {
		keeper := subscribe("keeper", true, true)
		readers.go_(func() error {
			defer keeper.Close()
			for {
				it, err := keeper.Next(ctx)
				if err != nil {
					return err
				}
				for range 1 + it.Missed { // Missed is 0 unless the engine is broken
					select {
					case tokens <- struct{}{}:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				if it.Sequence >= uint64(total) {
					return nil
				}
			}
		})
	}

	var pubs group
	for p := range publishers {
		pr := rec.Publisher()
		pubs.go_(func() error {
			for i := 1; i <= each; i++ {
				if paced && !refused(i) {
					select {
					case <-tokens:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				if err := stressPublish(ctx, pr, c, "t", i); err != nil {
					return err
				}
				if p == 0 && i == each/2 {
					close(midway)
					if err := receiveN(ctx, joined, 1); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	require.NoError(t, pubs.wait())
	close(published)
	require.NoError(t, readers.wait())

	h := rec.History()
	history.Require(t, h)
	first := stalled.H.Items[0]
	assert.Equal(t, uint64(total-ring+1), first.Seq, "the stalled reader starts at the oldest item held")
	assert.Equal(t, uint64(total-ring), first.Missed, "and is told it missed everything before it")
	var stats []string
	for _, s := range h.Subs {
		var missed uint64
		for _, it := range s.Items {
			missed += it.Missed
		}
		stats = append(stats, fmt.Sprintf("%s %d+%d", s.Name, len(s.Items), missed))
	}
	t.Logf("%d items, ring %d, %v; delivered+missed: %v", total, ring, time.Since(start).Round(time.Millisecond), stats)
}

// Scenario 3: subscribers that never read hold no memory. A publisher
// publishes far more than the ring holds to a topic with 100 subscribers
// that never read; it must finish, and the live heap must stay within twice
// the ring's payload bytes plus a fixed allowance.
func TestStressMemory(t *testing.T) {
	cases := []struct{ ring, valueSize, items int }{
		{1024, 1 << 10, sizes.memoryItems}, // the scenario of BENCHMARKS.md
		// Small rings of large values: the ring's chunks of entries must not
		// keep alive more payloads than the ring holds.
		{8, 16 << 10, sizes.memoryItems / 10},
		{1, 64 << 10, sizes.memoryItems / 50},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("ring %d of %d-byte values", tc.ring, tc.valueSize), func(t *testing.T) {
			stressMemory(t, tc.ring, tc.valueSize, tc.items)
		})
	}
}

// memoryAllowance is the fixed part of the heap bound of TestStressMemory:
// the cache, its topic and 100 subscriptions (each under 256 bytes plus a
// one-token channel: about 40 KiB in all), the ring's bookkeeping that does
// not grow with payloads (a handful of entry chunks' headers), and what the
// runtime and the testing package allocate meanwhile (timers, the goroutine
// that publishes, profiling buckets: tens of KiB). 256 KiB covers these with
// room to spare, yet is a small fraction of what a single leaked chunk of
// payloads would add at these sizes.
const memoryAllowance = 256 << 10

func stressMemory(t *testing.T, ring, valueSize, items int) {
	const subscribers = 100
	before := int64(liveHeap())

	c, err := topics.NewCache("memory", topics.WithRingSize(ring), topics.WithMaxValueSize(valueSize))
	require.NoError(t, err)
	defer c.Close()
	subs := make([]*topics.Subscription[topics.Value], subscribers)
	for i := range subs {
		subs[i], err = c.Subscribe(context.Background(), "t")
		require.NoError(t, err)
	}

	start := time.Now()
	runWithin(t, sizes.deadline, func() error {
		buf := make([]byte, valueSize)
		for i := 1; i <= items; i++ {
			history.EncodePayload(buf, 1, uint64(i))
			if err := c.Publish(context.Background(), "t", buf); err != nil {
				return err
			}
		}
		return nil
	}, func() string {
		return fmt.Sprintf("the publisher did not finish %d publishes within %v:\n%s", items, sizes.deadline, goroutines())
	})
	elapsed := time.Since(start)

	after := int64(liveHeap())
	grown := after - before
	// Twice the payloads the ring holds, plus per slot its pointer and one
	// entry (a sequence, a publisher and a Value: under 64 bytes).
	limit := int64(2*ring*valueSize + 64*ring + memoryAllowance)
	t.Logf("%d items of %d bytes, ring %d, %d subscribers: published in %v, live heap grew by %d KiB (limit %d KiB)",
		items, valueSize, ring, subscribers, elapsed.Round(time.Millisecond), grown>>10, limit>>10)
	assert.LessOrEqual(t, grown, limit, "the live heap grew by %d bytes; the ring holds %d", grown, ring*valueSize)

	// Every subscriber finds the newest ring items and is told exactly what
	// it missed; the items are whole.
	ctx, cancel := context.WithTimeout(context.Background(), sizes.deadline)
	defer cancel()
	for i, s := range subs {
		it, err := s.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, uint64(items-ring+1), it.Sequence, "subscriber %d", i)
		require.Equal(t, uint64(items-ring), it.Missed, "subscriber %d", i)
		if i < 2 {
			for {
				p, n, ok := history.DecodePayload(it.Value.Bytes())
				require.True(t, ok, "torn item %d", it.Sequence)
				require.Equal(t, [2]uint64{1, it.Sequence}, [2]uint64{uint64(p), n})
				if it.Sequence == uint64(items) {
					break
				}
				it, err = s.Next(ctx)
				require.NoError(t, err)
				require.Zero(t, it.Missed)
			}
		}
		require.NoError(t, s.Close())
	}
	runtime.KeepAlive(subs)
}
