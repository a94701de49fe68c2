package topics_test

import (
	"context"
	mrand "math/rand"
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

type order struct {
	ID     int
	Symbol string
	Qty    float64
	Tags   []string
}

func TestTypedPublishSubscribe(t *testing.T) {
	ctx := context.Background()
	c := newCache(t)
	h, err := topics.TopicOf[order](c, "orders")
	require.NoError(t, err)
	assert.Equal(t, "orders", h.Name())
	s1, err := h.Subscribe(ctx)
	require.NoError(t, err)
	defer s1.Close()
	h2, err := topics.TopicOf[order](c, "orders") // a second handle, same topic
	require.NoError(t, err)
	s2, err := h2.Subscribe(ctx)
	require.NoError(t, err)
	defer s2.Close()

	want := []order{
		{ID: 1, Symbol: "ABC", Qty: 1.5, Tags: []string{"x"}},
		{ID: 2, Symbol: "DEF", Qty: -3},
		{},
	}
	require.NoError(t, h.Publish(ctx, want[0]))
	require.NoError(t, h2.Publish(ctx, want[1]))
	require.NoError(t, h.Publish(ctx, want[2]))
	var page uint64
	for _, s := range []*topics.Subscription[order]{s1, s2} {
		for i, w := range want {
			it := next(t, s)
			assert.Equal(t, w, it.Value)
			assert.Equal(t, uint64(i+1), it.Sequence)
			assert.Equal(t, uint64(0), it.Missed)
			assert.Equal(t, "orders", it.Topic)
			if page == 0 {
				page = it.Page
			}
			assert.Equal(t, page, it.Page)
		}
	}
}

func TestTypedWrongType(t *testing.T) {
	ctx := context.Background()
	c := newCache(t)
	hs, err := topics.TopicOf[string](c, "strings")
	require.NoError(t, err)
	require.NoError(t, hs.Publish(ctx, "hello"))

	hi, err := topics.TopicOf[int](c, "strings")
	require.ErrorIs(t, err, topics.ErrTopicType)
	assert.Nil(t, hi)
	assert.Regexp(t, regexp.MustCompile(`\bint\b`), err.Error(), "names the requested type")
	assert.Regexp(t, regexp.MustCompile(`\bstring\b`), err.Error(), "names the topic's type")

	// Value topics are typed topics too.
	publish(t, c, "values", "x")
	ho, err := topics.TopicOf[order](c, "values")
	require.ErrorIs(t, err, topics.ErrTopicType)
	assert.Nil(t, ho)
	assert.Contains(t, err.Error(), "order")
	assert.Contains(t, err.Error(), "Value")

	// And Cache.Publish/Subscribe refuse a topic of another type.
	require.ErrorIs(t, c.PublishString(ctx, "strings", "x"), topics.ErrTopicType)
	require.ErrorIs(t, c.Publish(ctx, "strings", []byte("x")), topics.ErrTopicType)
	s, err := c.Subscribe(ctx, "strings")
	require.ErrorIs(t, err, topics.ErrTopicType)
	assert.Nil(t, s)

	// The topic is unharmed.
	ss, err := hs.Subscribe(ctx)
	require.NoError(t, err)
	defer ss.Close()
	require.NoError(t, hs.Publish(ctx, "again"))
	it := next(t, ss)
	assert.Equal(t, "again", it.Value)
	assert.Equal(t, uint64(2), it.Sequence, "refused publishes took no sequence")
}

func TestTypedStaleHandleWrongType(t *testing.T) {
	ctx := context.Background()
	c := newCache(t)
	// Two handles of different types, taken before the topic exists.
	hi, err := topics.TopicOf[int](c, "t")
	require.NoError(t, err)
	hs, err := topics.TopicOf[string](c, "t")
	require.NoError(t, err)

	require.NoError(t, hi.Publish(ctx, 1)) // creates the topic with ints
	require.ErrorIs(t, hs.Publish(ctx, "x"), topics.ErrTopicType)
	s, err := hs.Subscribe(ctx)
	require.ErrorIs(t, err, topics.ErrTopicType)
	assert.Nil(t, s)
}

func TestTypedValueIsCacheTopic(t *testing.T) {
	ctx := context.Background()
	c := newCache(t)
	h, err := topics.TopicOf[topics.Value](c, "shared")
	require.NoError(t, err)
	viaCache := subscribe(t, c, "shared")
	viaTopic, err := h.Subscribe(ctx)
	require.NoError(t, err)
	defer viaTopic.Close()

	require.NoError(t, c.Publish(ctx, "shared", []byte("from cache")))
	require.NoError(t, h.Publish(ctx, topics.TextValue("from topic")))
	require.NoError(t, c.PublishString(ctx, "shared", "from cache, text"))
	require.NoError(t, h.Publish(ctx, topics.BytesValue([]byte("from topic, bytes"))))

	want := []struct {
		s    string
		text bool
	}{{"from cache", false}, {"from topic", true}, {"from cache, text", true}, {"from topic, bytes", false}}
	for _, s := range []*topics.Subscription[topics.Value]{viaCache, viaTopic} {
		for i, w := range want {
			it := next(t, s)
			assert.Equal(t, uint64(i+1), it.Sequence, "one sequence for both ways in")
			assert.Equal(t, w.s, it.Value.String())
			assert.Equal(t, w.text, it.Value.IsText())
		}
	}

	// A handle taken after the topic exists is the same topic too.
	h2, err := topics.TopicOf[topics.Value](c, "shared")
	require.NoError(t, err)
	require.NoError(t, h2.Publish(ctx, topics.TextValue("fifth")))
	it := next(t, viaCache)
	assert.Equal(t, uint64(5), it.Sequence)
	assert.Equal(t, "fifth", it.Value.String())
}

func TestTypedValueMaxValueSize(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, topics.WithMaxValueSize(4))
	h, err := topics.TopicOf[topics.Value](c, "t")
	require.NoError(t, err)
	s, err := h.Subscribe(ctx)
	require.NoError(t, err)
	defer s.Close()
	require.ErrorIs(t, h.Publish(ctx, topics.TextValue("12345")), topics.ErrValueTooLarge)
	require.ErrorIs(t, h.Publish(ctx, topics.BytesValue([]byte("12345"))), topics.ErrValueTooLarge)
	require.NoError(t, h.Publish(ctx, topics.TextValue("1234")))
	it := next(t, s)
	assert.Equal(t, "1234", it.Value.String())
	assert.Equal(t, uint64(1), it.Sequence)
}

func TestTypedOtherTypesNotSizeLimited(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, topics.WithMaxValueSize(4))
	h, err := topics.TopicOf[[]byte](c, "raw")
	require.NoError(t, err)
	s, err := h.Subscribe(ctx)
	require.NoError(t, err)
	defer s.Close()
	big := make([]byte, 100)
	require.NoError(t, h.Publish(ctx, big))
	assert.Len(t, next(t, s).Value, 100)
}

// A mismatch is refused by TopicOf as soon as the topic exists, and by the
// use of a handle taken before; every refusal names both types, told apart
// when they print alike.
func TestTypedMismatchNamesBothTypes(t *testing.T) {
	ctx := context.Background()
	c := newCache(t)
	const want = `topics: topic carries another type: topic "r" of cache "test-cache" carries *rand.Rand (package math/rand), not *rand.Rand (package math/rand/v2)`

	// Taken while the topic does not exist: both handles are fine.
	v1, err := topics.TopicOf[*mrand.Rand](c, "r")
	require.NoError(t, err)
	v2, err := topics.TopicOf[*rand.Rand](c, "r")
	require.NoError(t, err)
	s, err := v1.Subscribe(ctx) // creates it, with math/rand's
	require.NoError(t, err)
	defer s.Close()

	require.EqualError(t, v2.Publish(ctx, nil), want)
	_, err = v2.Subscribe(ctx)
	require.EqualError(t, err, want)
	_, err = v2.Handle(ctx, func(context.Context, topics.Item[*rand.Rand]) error { return nil })
	require.EqualError(t, err, want)
	_, err = topics.TopicOf[*rand.Rand](c, "r")
	require.EqualError(t, err, want)
	require.ErrorIs(t, err, topics.ErrTopicType)

	// Two types of one name in one package: the package's order, and one
	// declared here.
	orders, err := topics.TopicOf[[]order](c, "orders")
	require.NoError(t, err)
	require.NoError(t, orders.Publish(ctx, nil))
	type order struct{ Ref string }
	_, err = topics.TopicOf[[]order](c, "orders")
	require.EqualError(t, err, `topics: topic carries another type: topic "orders" of cache "test-cache" carries []topics_test.order, not []topics_test.order (another type of that name)`)
}
