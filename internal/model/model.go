// Package model runs scripts of operations against the engine and against a
// model of it made of slices and maps, and compares every result: each
// error (by sentinel), each item (topic, sequence, page, Missed, value,
// kind), each cache handle and listing. The fuzz target FuzzModel of package
// topics feeds it.
//
// Where the documentation does not order two reasons for an error (a closed
// cache and a cancelled context, say), the model accepts any of them, and an
// operation that fails changes nothing. A script is
//
//	byte 0: the engine's ring size option
//	then 4 bytes per operation: the operation, and three arguments
package model

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/internal/testkit"
)

// Operations of a script.
const (
	opCreateCache = iota
	opLookupCache
	opDeleteCache
	opCloseCache
	opCloseEngine
	opPublish      // Cache.Publish or PublishString
	opPublishTopic // through a TopicOf[Value] handle, kept between operations
	opPublishInt   // through a TopicOf[int] handle
	opSubscribe
	opSubscribeInt
	opNextCancelled // Next with a context that is already done
	opNext          // Next when an item is ready (must return it) or not (must wait)
	opCloseSub
	opListCaches
	numOps
)

var opNames = [...]string{"CreateCache", "Engine.Cache", "DeleteCache", "Cache.Close", "Engine.Close",
	"Publish", "Topic[Value].Publish", "Topic[int].Publish", "Subscribe", "Topic[int].Subscribe",
	"Next(cancelled)", "Next", "Subscription.Close", "ListCaches"}

const maxModelOps = 300

var modelCacheNames = []string{"a", "b"}
var modelTopicNames = []string{"t0", "t1", "t2"}

// mCache is the model of one cache.
type mCache struct {
	real                         *topics.Cache
	name                         string
	ring                         int
	maxTopics, maxSubs, maxValue int
	end                          []error // nil while open; else what its end wraps
	topics                       map[string]*mTopic
	nsubs                        int
	handles                      map[string]any // TopicOf handles, by kind and topic
}

// mTopic is the model of one topic instance: every item ever published.
type mTopic struct {
	name  string
	typed bool // carries int, not Value
	items []mItem
	page  uint64 // learned from the first item received; 0 until then
}

type mItem struct {
	value string
	text  bool
}

// mSub is the model of one subscription, with its real counterpart.
type mSub struct {
	cache *mCache
	topic *mTopic
	next  uint64  // sequence wanted next
	end   []error // nil while open; else what Next's error must wrap
	read  func(ctx context.Context) (topics.Item[mItem], error)
	close func() error
}

type model struct {
	t      *testing.T
	script []byte
	pos    int
	log    []string // what ran, for failure reports

	e       *topics.Engine
	closed  bool
	ring    int // the engine's default ring size
	caches  map[string]*mCache
	handles []*mCache // every cache ever created, open or not
	subs    []*mSub
}

// Run runs the script against the engine and the model, and fails t at the
// first difference.
func Run(t *testing.T, script []byte) {
	m := newModel(t, script)
	defer m.close()
	m.run()
}

func newModel(t *testing.T, script []byte) *model {
	m := &model{t: t, script: script, caches: map[string]*mCache{}, ring: topics.DefaultRingSize}
	var opts []topics.Option
	if r := []int{0, 1, 2, 4, 8}[int(m.byte())%5]; r != 0 {
		m.ring = r
		opts = append(opts, topics.WithRingSize(r))
	}
	m.e = topics.New(opts...)
	return m
}

func (m *model) byte() byte {
	if m.pos >= len(m.script) {
		return 0
	}
	b := m.script[m.pos]
	m.pos++
	return b
}

func (m *model) close() {
	m.e.Close()
	for _, s := range m.subs {
		s.close()
	}
}

func (m *model) fatalf(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("%s\nscript so far:\n  %s", fmt.Sprintf(format, args...), strings.Join(m.log, "\n  "))
}

// lookupReasons returns why the model expects Engine.Cache or DeleteCache
// of name to fail: a closed engine, else no such cache.
func (m *model) lookupReasons(name string) [][]error {
	switch {
	case m.closed:
		return [][]error{reasonClosed}
	case m.caches[name] == nil:
		return [][]error{reasonNotFound}
	}
	return nil
}

// want compares an error with the reasons the model finds for one: with
// none it must be nil; with some, it must wrap every sentinel of one of
// them. It reports whether the call succeeded.
func (m *model) want(op string, err error, reasons ...[]error) bool {
	m.t.Helper()
	m.log[len(m.log)-1] += fmt.Sprintf(" → %v", err)
	if len(reasons) == 0 {
		if err != nil {
			m.fatalf("%s: got error %v, the model expects success", op, err)
		}
		return true
	}
	if err == nil {
		m.fatalf("%s: succeeded, the model expects an error wrapping one of %v", op, reasons)
	}
	for _, r := range reasons {
		if wrapsAll(err, r) {
			return false
		}
	}
	m.fatalf("%s: got %v, the model expects an error wrapping one of %v", op, err, reasons)
	return false
}

func wrapsAll(err error, sentinels []error) bool {
	for _, s := range sentinels {
		if !errors.Is(err, s) {
			return false
		}
	}
	return true
}

var (
	reasonCancelled = []error{context.Canceled}
	reasonClosed    = []error{topics.ErrClosed}
	reasonDeleted   = []error{topics.ErrClosed, topics.ErrCacheNotFound}
	reasonLimit     = []error{topics.ErrLimitExceeded}
	reasonType      = []error{topics.ErrTopicType}
	reasonTooLarge  = []error{topics.ErrValueTooLarge}
	reasonExists    = []error{topics.ErrCacheExists}
	reasonNotFound  = []error{topics.ErrCacheNotFound}
)

func (m *model) run() {
	for ops := 0; m.pos < len(m.script) && ops < maxModelOps; ops++ {
		op, x, y, z := int(m.byte())%numOps, m.byte(), m.byte(), m.byte()
		m.log = append(m.log, fmt.Sprintf("%s(%d, %d, %d)", opNames[op], x, y, z))
		m.step(op, x, y, z)
	}
}

// handle returns a cache ever created, or nil.
func (m *model) handle(x byte) *mCache {
	if len(m.handles) == 0 {
		return nil
	}
	return m.handles[int(x)%len(m.handles)]
}

func (m *model) sub(x byte) *mSub {
	if len(m.subs) == 0 {
		return nil
	}
	return m.subs[int(x)%len(m.subs)]
}

// ctx returns a context, already cancelled one time in eight.
func ctxFor(z byte) (context.Context, []error) {
	if z%8 == 7 {
		return testkit.Cancelled(), reasonCancelled
	}
	return context.Background(), nil
}

func (m *model) step(op int, x, y, z byte) {
	name := modelCacheNames[int(x)%len(modelCacheNames)]
	topic := modelTopicNames[int(y)%len(modelTopicNames)]
	switch op {
	case opCreateCache:
		mc := &mCache{name: name, ring: m.ring, maxTopics: topics.DefaultMaxTopics, maxSubs: topics.DefaultMaxSubscribers,
			maxValue: topics.DefaultMaxValueSize, topics: map[string]*mTopic{}, handles: map[string]any{}}
		var opts []topics.Option
		if r := []int{0, 1, 2, 4, 8}[int(y)%5]; r != 0 {
			mc.ring = r
			opts = append(opts, topics.WithRingSize(r))
		}
		if n := []int{0, 1, 2}[int(z)%3]; n != 0 {
			mc.maxTopics = n
			opts = append(opts, topics.WithMaxTopics(n))
		}
		if n := []int{0, 1, 2}[int(z>>2)%3]; n != 0 {
			mc.maxSubs = n
			opts = append(opts, topics.WithMaxSubscribers(n))
		}
		if n := []int{0, 3, 8}[int(z>>4)%3]; n != 0 {
			mc.maxValue = n
			opts = append(opts, topics.WithMaxValueSize(n))
		}
		c, err := m.e.CreateCache(name, opts...)
		var reasons [][]error
		if m.closed {
			reasons = append(reasons, reasonClosed)
		}
		if m.caches[name] != nil {
			reasons = append(reasons, reasonExists)
		}
		if m.want("CreateCache", err, reasons...) {
			if c.Name() != name {
				m.fatalf("CreateCache(%q) made a cache named %q", name, c.Name())
			}
			mc.real = c
			m.caches[name] = mc
			m.handles = append(m.handles, mc)
		}

	case opLookupCache:
		c, err := m.e.Cache(name)
		if m.want("Engine.Cache", err, m.lookupReasons(name)...) && c != m.caches[name].real {
			m.fatalf("Engine.Cache(%q) returned another cache than CreateCache did", name)
		}

	case opDeleteCache:
		err := m.e.DeleteCache(name)
		if m.want("DeleteCache", err, m.lookupReasons(name)...) {
			mc := m.caches[name]
			delete(m.caches, name)
			m.end(mc, reasonDeleted)
		}

	case opCloseCache:
		mc := m.handle(x)
		if mc == nil {
			return
		}
		m.want("Cache.Close", mc.real.Close())
		if mc.end == nil {
			if m.caches[mc.name] == mc {
				delete(m.caches, mc.name)
			}
			m.end(mc, reasonClosed)
		}

	case opCloseEngine:
		m.want("Engine.Close", m.e.Close())
		if !m.closed {
			m.closed = true
			for _, mc := range m.caches {
				m.end(mc, reasonClosed)
			}
			clear(m.caches)
		}

	case opPublish, opPublishTopic, opPublishInt:
		mc := m.handle(x)
		if mc == nil {
			return
		}
		ctx, cancelReason := ctxFor(z)
		typed := op == opPublishInt
		value := mItem{value: strings.Repeat(string(rune('a'+z%26)), int(z>>3)%12), text: z&4 == 0}
		var err error
		switch op {
		case opPublish:
			if value.text {
				err = mc.real.PublishString(ctx, topic, value.value)
			} else {
				err = mc.real.Publish(ctx, topic, []byte(value.value))
			}
		case opPublishTopic:
			value.text = true
			var h *topics.Topic[topics.Value]
			if h, err = topicHandle[topics.Value](mc, topic); err == nil {
				err = h.Publish(ctx, topics.TextValue(value.value))
			}
		case opPublishInt:
			value = mItem{value: strconv.Itoa(int(z))}
			var h *topics.Topic[int]
			if h, err = topicHandle[int](mc, topic); err == nil {
				err = h.Publish(ctx, int(z))
			}
		}
		reasons := m.usage(mc, topic, typed, false)
		if cancelReason != nil {
			reasons = append(reasons, cancelReason)
		}
		if !typed && len(value.value) > mc.maxValue {
			reasons = append(reasons, reasonTooLarge)
		}
		if m.want(opNames[op], err, reasons...) {
			t := m.topic(mc, topic, typed)
			t.items = append(t.items, value)
		}

	case opSubscribe, opSubscribeInt:
		mc := m.handle(x)
		if mc == nil {
			return
		}
		typed := op == opSubscribeInt
		ctx, cancelReason := ctxFor(z)
		// Resume: not at all, at the topic's page as far as the model knows
		// it (0 if it does not), or at a page that is not the topic's.
		var subOpts []topics.SubscribeOption
		resume, resumePage, resumeSeq := false, uint64(0), uint64(z>>3)
		if t := mc.topics[topic]; t != nil {
			resumePage = t.page
		}
		switch z % 3 {
		case 1:
			resume = true
		case 2:
			resume, resumePage = true, 1 // pages come from the clock: never 1
		}
		if resume {
			subOpts = append(subOpts, topics.ResumeAt(resumePage, resumeSeq))
		}
		ms := &mSub{cache: mc}
		var err error
		if typed {
			var h *topics.Topic[int]
			if h, err = topicHandle[int](mc, topic); err == nil {
				var s *topics.Subscription[int]
				if s, err = h.Subscribe(ctx, subOpts...); err == nil {
					ms.read = func(ctx context.Context) (topics.Item[mItem], error) {
						it, err := s.Next(ctx)
						return topics.Item[mItem]{Topic: it.Topic, Sequence: it.Sequence, Page: it.Page, Publisher: it.Publisher,
							Missed: it.Missed, Value: mItem{value: strconv.Itoa(it.Value)}}, err
					}
					ms.close = s.Close
				}
			}
		} else {
			var s *topics.Subscription[topics.Value]
			if s, err = mc.real.Subscribe(ctx, topic, subOpts...); err == nil {
				// Every other untyped subscription reads with NextBatch, one
				// item at a time so that each read is one step of the model:
				// its waiting and its errors must be Next's.
				batch := z&8 != 0
				ms.read = func(ctx context.Context) (topics.Item[mItem], error) {
					var it topics.Item[topics.Value]
					var err error
					if batch {
						buf := make([]topics.Item[topics.Value], 1)
						var n int
						n, err = s.NextBatch(ctx, buf)
						if err == nil && n != 1 {
							err = fmt.Errorf("NextBatch read %d items into a buffer of 1", n)
						}
						it = buf[0]
					} else {
						it, err = s.Next(ctx)
					}
					return topics.Item[mItem]{Topic: it.Topic, Sequence: it.Sequence, Page: it.Page, Publisher: it.Publisher,
						Missed: it.Missed, Value: mItem{value: it.Value.String(), text: it.Value.IsText()}}, err
				}
				ms.close = s.Close
			}
		}
		reasons := m.usage(mc, topic, typed, true)
		if cancelReason != nil {
			reasons = append(reasons, cancelReason)
		}
		if m.want(opNames[op], err, reasons...) {
			t := m.topic(mc, topic, typed)
			head := uint64(len(t.items))
			ms.topic = t
			current := t.page != 0 && resumePage == t.page // else not the topic's page
			switch {
			case !resume:
				ms.next = head + 1
			case !current:
				ms.next = 1 // the ring skips to its oldest item, with Missed
			case max(resumeSeq, 1) > head+1:
				ms.next = head + 1
			default:
				ms.next = max(resumeSeq, 1)
			}
			mc.nsubs++
			m.subs = append(m.subs, ms)
		}

	case opNextCancelled:
		ms := m.sub(x)
		if ms == nil {
			return
		}
		_, err := ms.read(testkit.Cancelled())
		if ms.end != nil {
			m.want("Next(cancelled)", err, ms.end, reasonCancelled)
		} else {
			m.want("Next(cancelled)", err, reasonCancelled)
		}

	case opNext:
		ms := m.sub(x)
		if ms == nil {
			return
		}
		if ms.end != nil {
			_, err := ms.read(&doneLater{Context: context.Background()})
			m.want("Next (ended)", err, ms.end)
			return
		}
		t := ms.topic
		head := uint64(len(t.items))
		if ms.next > head {
			// Nothing is ready: Next must wait, and return when its context
			// ends.
			ctx := &doneLater{Context: context.Background()}
			it, err := ms.read(ctx)
			if err == nil {
				m.log[len(m.log)-1] += fmt.Sprintf(" → item %d", it.Sequence)
				m.fatalf("Next returned sequence %d with nothing published after %d", it.Sequence, head)
			}
			m.want("Next (nothing ready)", err, reasonCancelled)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitLimit)
		defer cancel()
		it, err := ms.read(ctx)
		m.want("Next (ready)", err)
		m.log[len(m.log)-1] += fmt.Sprintf(" item %d missed %d %q", it.Sequence, it.Missed, it.Value.value)
		oldest := uint64(1)
		if ring := uint64(ms.cache.ring); head > ring {
			oldest = head - ring + 1
		}
		seq := max(ms.next, oldest)
		want := topics.Item[mItem]{Topic: t.name, Sequence: seq, Page: it.Page, Missed: seq - ms.next, Value: t.items[seq-1]}
		if it != want {
			m.fatalf("Next returned %+v, the model expects %+v", it, want)
		}
		switch {
		case it.Page == 0:
			m.fatalf("Next returned page 0")
		case t.page == 0:
			t.page = it.Page
		case it.Page != t.page:
			m.fatalf("Next returned page %d, the topic's page is %d", it.Page, t.page)
		}
		ms.next = seq + 1

	case opCloseSub:
		ms := m.sub(x)
		if ms == nil {
			return
		}
		m.want("Subscription.Close", ms.close())
		if ms.end == nil {
			ms.end = reasonClosed
			ms.cache.nsubs--
		}

	case opListCaches:
		got := m.e.ListCaches()
		var want []string
		for name := range m.caches {
			want = append(want, name)
		}
		slices.Sort(want)
		m.log[len(m.log)-1] += fmt.Sprintf(" → %v", got)
		if !slices.Equal(got, want) {
			m.fatalf("ListCaches returned %v, the model has %v", got, want)
		}
	}
}

// usage returns the reasons a publish (or, with subscribe, a subscribe) to
// topic of mc may be refused for.
func (m *model) usage(mc *mCache, topic string, typed, subscribe bool) [][]error {
	var reasons [][]error
	if mc.end != nil {
		reasons = append(reasons, mc.end)
	}
	t := mc.topics[topic]
	if t != nil && t.typed != typed {
		reasons = append(reasons, reasonType)
	}
	if t == nil && len(mc.topics) >= mc.maxTopics {
		reasons = append(reasons, reasonLimit)
	}
	if subscribe && mc.nsubs >= mc.maxSubs {
		reasons = append(reasons, reasonLimit)
	}
	return reasons
}

// topic returns the model's topic, creating it.
func (m *model) topic(mc *mCache, name string, typed bool) *mTopic {
	t := mc.topics[name]
	if t == nil {
		t = &mTopic{name: name, typed: typed}
		mc.topics[name] = t
	}
	return t
}

// end ends a cache and its open subscriptions with reason.
func (m *model) end(mc *mCache, reason []error) {
	if mc.end != nil {
		return
	}
	mc.end = reason
	for _, s := range m.subs {
		if s.cache == mc && s.end == nil {
			s.end = reason
		}
	}
}

// topicHandle returns the cache's TopicOf[T] handle for the topic, made on
// first use and kept, so that later operations use a handle that has seen
// the topic before.
func topicHandle[T any](mc *mCache, topic string) (*topics.Topic[T], error) {
	key := fmt.Sprintf("%T/%s", *new(T), topic)
	if h, ok := mc.handles[key]; ok {
		return h.(*topics.Topic[T]), nil
	}
	h, err := topics.TopicOf[T](mc.real, topic)
	if err == nil {
		mc.handles[key] = h
	}
	return h, err
}

// doneLater is a context that is not done when Next first looks at it, and
// done from then on: Next with nothing to read must wait, and so return
// context.Canceled, without another goroutine or a timer. Next may look more
// often, which only makes the check weaker.
type doneLater struct {
	context.Context
	looked bool
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *doneLater) Done() <-chan struct{} { return closedChan }

func (c *doneLater) Err() error {
	if !c.looked {
		c.looked = true
		return nil
	}
	return context.Canceled
}

// script builds a FuzzModel input from an engine ring byte and operations.
func script(ring byte, ops ...[4]byte) []byte {
	b := []byte{ring}
	for _, op := range ops {
		b = append(b, op[:]...)
	}
	return b
}

// Seeds returns scripts that cover every operation, for a fuzz corpus.
func Seeds() [][]byte {
	o := func(op int, x, y, z byte) [4]byte { return [4]byte{byte(op), x, y, z} }
	return [][]byte{
		// Fan-out and loss on a ring of 2 (cache ring option y=2).
		script(0, o(opCreateCache, 0, 2, 0), o(opSubscribe, 0, 0, 0), o(opSubscribe, 0, 0, 0),
			o(opPublish, 0, 0, 8), o(opNext, 0, 0, 0), o(opPublish, 0, 0, 9), o(opPublish, 0, 0, 10),
			o(opPublish, 0, 0, 11), o(opNext, 0, 0, 0), o(opNext, 1, 0, 0), o(opNext, 1, 0, 0), o(opNext, 1, 0, 0)),
		// Resume at the topic's page and at another page.
		script(2, o(opCreateCache, 1, 0, 0), o(opSubscribe, 1, 1, 0), o(opPublish, 0, 1, 16), o(opPublish, 0, 1, 24),
			o(opNext, 0, 0, 0), o(opSubscribe, 0, 1, 1+8), o(opNext, 1, 0, 0), o(opSubscribe, 0, 1, 2+16), o(opNext, 2, 0, 0)),
		// Typed topics and type clashes.
		script(1, o(opCreateCache, 0, 0, 0), o(opPublishInt, 0, 0, 5), o(opPublish, 0, 0, 5), o(opSubscribeInt, 0, 0, 0),
			o(opPublishInt, 0, 0, 6), o(opNext, 0, 0, 0), o(opSubscribe, 0, 0, 0), o(opPublishTopic, 0, 1, 3)),
		// Limits: one topic, one subscriber, values of 3 bytes.
		script(0, o(opCreateCache, 0, 0, 1|1<<2|1<<4), o(opSubscribe, 0, 0, 0), o(opSubscribe, 0, 0, 0),
			o(opPublish, 0, 1, 0), o(opPublish, 0, 0, 4<<3), o(opCloseSub, 0, 0, 0), o(opSubscribe, 0, 0, 0)),
		// Ends: delete, close, engine close; Next on each.
		script(3, o(opCreateCache, 0, 0, 0), o(opCreateCache, 1, 0, 0), o(opSubscribe, 0, 0, 0), o(opSubscribe, 1, 0, 0),
			o(opDeleteCache, 0, 0, 0), o(opNext, 0, 0, 0), o(opCloseSub, 0, 0, 0), o(opNext, 0, 0, 0),
			o(opCreateCache, 0, 0, 0), o(opListCaches, 0, 0, 0), o(opLookupCache, 0, 0, 0), o(opCloseCache, 1, 0, 0),
			o(opNext, 1, 0, 0), o(opCloseEngine, 0, 0, 0), o(opPublish, 2, 0, 0), o(opNextCancelled, 1, 0, 0)),
		// Next with nothing ready, cancelled contexts.
		script(4, o(opCreateCache, 0, 0, 0), o(opSubscribe, 0, 0, 0), o(opNext, 0, 0, 0), o(opNextCancelled, 0, 0, 0),
			o(opPublish, 0, 0, 7), o(opPublish, 0, 0, 6), o(opNextCancelled, 0, 0, 0), o(opNext, 0, 0, 0)),
	}
}
