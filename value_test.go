package topics_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

func TestPublishCopiesPayload(t *testing.T) {
	ctx := context.Background()
	c := newCache(t)
	s := subscribe(t, c, "t")
	buf := []byte("hello")
	require.NoError(t, c.Publish(ctx, "t", buf))
	copy(buf, "XXXXX")
	buf = append(buf[:0], "world"...) // reuse the caller's buffer
	require.NoError(t, c.Publish(ctx, "t", buf))
	copy(buf, "YYYYY")

	it := next(t, s)
	assert.Equal(t, "hello", it.Value.String())
	assert.Equal(t, []byte("hello"), it.Value.Bytes())
	it = next(t, s)
	assert.Equal(t, "world", it.Value.String())

	// A subscriber that resumes later sees the originals too.
	late := subscribe(t, c, "t", topics.ResumeAt(it.Page, 1))
	assert.Equal(t, "hello", next(t, late).Value.String())
	assert.Equal(t, "world", next(t, late).Value.String())
}

func TestValueKinds(t *testing.T) {
	ctx := context.Background()
	c := newCache(t)
	s := subscribe(t, c, "t")
	require.NoError(t, c.Publish(ctx, "t", []byte("bin\x00ary")))
	require.NoError(t, c.PublishString(ctx, "t", "text ✓"))
	require.NoError(t, c.Publish(ctx, "t", nil))
	require.NoError(t, c.Publish(ctx, "t", []byte{}))
	require.NoError(t, c.PublishString(ctx, "t", ""))

	cases := []struct {
		bytes []byte
		str   string
		text  bool
	}{
		{[]byte("bin\x00ary"), "bin\x00ary", false},
		{[]byte("text ✓"), "text ✓", true},
		{nil, "", false},
		{nil, "", false},
		{nil, "", true},
	}
	for i, want := range cases {
		v := next(t, s).Value
		assert.Equal(t, want.text, v.IsText(), "item %d", i)
		assert.Equal(t, want.str, v.String(), "item %d", i)
		if len(want.bytes) == 0 {
			assert.Empty(t, v.Bytes(), "item %d", i)
		} else {
			assert.Equal(t, want.bytes, v.Bytes(), "item %d", i)
		}
	}
}

func TestValueConstructors(t *testing.T) {
	b := []byte("bytes")
	v := topics.BytesValue(b)
	copy(b, "XXXXX")
	assert.Equal(t, "bytes", v.String(), "BytesValue copies")
	assert.Equal(t, []byte("bytes"), v.Bytes())
	assert.False(t, v.IsText())

	tv := topics.TextValue("text")
	assert.Equal(t, "text", tv.String())
	assert.Equal(t, []byte("text"), tv.Bytes())
	assert.True(t, tv.IsText())

	assert.False(t, topics.BytesValue(nil).IsText())
	assert.Empty(t, topics.BytesValue(nil).Bytes())
	assert.True(t, topics.TextValue("").IsText())
	assert.Empty(t, topics.TextValue("").String())

	var zero topics.Value
	assert.False(t, zero.IsText(), "the zero Value is binary")
	assert.Empty(t, zero.Bytes())
	assert.Equal(t, "", zero.String())
}

func TestValueAppendDoesNotLeak(t *testing.T) {
	ctx := context.Background()
	publishers := []struct {
		desc string
		pub  func(c *topics.Cache) error
	}{
		{"Publish", func(c *topics.Cache) error { return c.Publish(ctx, "t", []byte("hello")) }},
		{"PublishString", func(c *topics.Cache) error { return c.PublishString(ctx, "t", "hello") }},
		{"BytesValue", func(c *topics.Cache) error {
			h, err := topics.TopicOf[topics.Value](c, "t")
			if err != nil {
				return err
			}
			return h.Publish(ctx, topics.BytesValue([]byte("hello")))
		}},
		{"TextValue", func(c *topics.Cache) error {
			h, err := topics.TopicOf[topics.Value](c, "t")
			if err != nil {
				return err
			}
			return h.Publish(ctx, topics.TextValue("hello"))
		}},
	}
	for _, p := range publishers {
		t.Run(p.desc, func(t *testing.T) {
			c := newCache(t)
			s1 := subscribe(t, c, "t")
			s2 := subscribe(t, c, "t")
			require.NoError(t, p.pub(c))
			v1 := next(t, s1).Value
			v2 := next(t, s2).Value

			// Short appends: they would fit in spare capacity of a shared
			// backing array, where they would overwrite each other.
			a := append(v1.Bytes(), '!')
			b := append(v2.Bytes(), '?')
			assert.Equal(t, "hello!", string(a))
			assert.Equal(t, "hello?", string(b))
			a[0] = 'J' // a must be a copy: the shared bytes are untouched
			assert.Equal(t, "hello", v1.String())
			assert.Equal(t, "hello", v2.String())
			assert.Equal(t, []byte("hello"), v2.Bytes())
			assert.Equal(t, "hello?", string(b))
		})
	}
}
