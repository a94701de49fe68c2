package topics_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

type nameCase struct {
	desc string
	name string
}

// Names valid for caches and topics alike.
var validNames = []nameCase{
	{"single lower-case letter", "a"},
	{"single upper-case letter", "Z"},
	{"single digit", "7"},
	{"single dot", "."},
	{"single underscore", "_"},
	{"single hyphen", "-"},
	{"all lower-case letters", "abcdefghijklmnopqrstuvwxyz"},
	{"all upper-case letters", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
	{"all digits", "0123456789"},
	{"every class mixed", "My.cache_name-01"},
	{"1 byte", "x"},
	{"255 bytes", strings.Repeat("a", 255)},
	{"255 bytes mixed", strings.Repeat("aZ9._", 51)},
}

// Names invalid for caches and topics alike.
var invalidNames = []nameCase{
	{"empty", ""},
	{"256 bytes", strings.Repeat("a", 256)},
	{"256 bytes of topic-only chars", strings.Repeat("a/:", 85) + "b"},
	{"1000 bytes", strings.Repeat("b", 1000)}, // ErrInvalidName only: messages may shorten it
	{"space inside", "a b"},
	{"leading space", " a"},
	{"trailing space", "a "},
	{"only a space", " "},
	{"unicode letter", "café"},
	{"unicode only", "日本"},
	{"255 bytes with one unicode letter", strings.Repeat("a", 253) + "é"},
	{"invalid UTF-8", "a\xffb"},
	{"NUL byte", "a\x00b"},
	{"tab", "a\tb"},
	{"newline", "a\nb"},
	{"carriage return", "a\rb"},
	{"escape", "a\x1bb"},
	{"DEL", "a\x7fb"},
	{"exclamation mark", "a!b"},
	{"at sign", "a@b"},
	{"hash", "a#b"},
	{"dollar", "a$b"},
	{"percent", "a%b"},
	{"ampersand", "a&b"},
	{"asterisk", "a*b"},
	{"plus", "a+b"},
	{"comma", "a,b"},
	{"semicolon", "a;b"},
	{"equals", "a=b"},
	{"question mark", "a?b"},
	{"brackets", "a[b]"},
	{"braces", "a{b}"},
	{"parentheses", "a(b)"},
	{"angle brackets", "a<b>"},
	{"pipe", "a|b"},
	{"tilde", "a~b"},
	{"caret", "a^b"},
	{"backquote", "a`b"},
	{"single quote", "a'b"},
	{"double quote", `a"b`},
	{"backslash", `a\b`},
}

// Names valid for topics only.
var topicOnlyNames = []nameCase{
	{"slash inside", "a/b"},
	{"colon inside", "a:b"},
	{"only a slash", "/"},
	{"only a colon", ":"},
	{"path-like", "/orders/eu-west:42/"},
	{"255 bytes of slashes and colons", strings.Repeat("/:", 127) + "/"},
}

// requireInvalidName checks that err reports name as invalid.
func requireInvalidName(t *testing.T, err error, name string) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, topics.ErrInvalidName)
	if name == "" {
		return // nothing to show
	}
	msg := err.Error()
	if len(name) > 64 {
		// Shortened: the first 64 bytes, or up to 3 fewer to end on a
		// character, then "…" and the length.
		assert.Contains(t, msg, fmt.Sprintf("… (%d bytes)", len(name)), "the message gives the name's length")
		shown := false
		for n := 61; n <= 64; n++ {
			shown = shown || strings.Contains(msg, strconv.Quote(name[:n])+"… ")
		}
		assert.True(t, shown, "message %q must begin to show the name %q", msg, name)
		return
	}
	quoted := strconv.Quote(name)
	if quoted == `"`+name+`"` {
		// A printable name must appear as it is.
		assert.Contains(t, msg, name, "the message must name the offending name")
	} else {
		// A name with bytes that need escaping must appear, escaped or not.
		assert.True(t, strings.Contains(msg, name) || strings.Contains(msg, quoted),
			"message %q must contain the name %q", msg, name)
	}
}

func TestCacheNamesValid(t *testing.T) {
	for _, tc := range validNames {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := topics.NewCache(tc.name)
			require.NoError(t, err)
			require.NotNil(t, c)
			assert.Equal(t, tc.name, c.Name())
			require.NoError(t, c.Close())

			e := topics.New()
			defer e.Close()
			c, err = e.CreateCache(tc.name)
			require.NoError(t, err)
			assert.Equal(t, tc.name, c.Name())
			got, err := e.Cache(tc.name)
			require.NoError(t, err)
			assert.Same(t, c, got)
			assert.Equal(t, []string{tc.name}, e.ListCaches())
			require.NoError(t, e.DeleteCache(tc.name))
			assert.Empty(t, e.ListCaches())
		})
	}
}

func TestCacheNamesInvalid(t *testing.T) {
	cases := append(append([]nameCase{}, invalidNames...), topicOnlyNames...)
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := topics.NewCache(tc.name)
			requireInvalidName(t, err, tc.name)
			assert.Nil(t, c)

			e := topics.New()
			defer e.Close()
			c, err = e.CreateCache(tc.name)
			requireInvalidName(t, err, tc.name)
			assert.Nil(t, c)
			assert.Empty(t, e.ListCaches(), "a refused CreateCache must create nothing")

			c, err = e.Cache(tc.name)
			requireInvalidName(t, err, tc.name)
			assert.Nil(t, c)

			err = e.DeleteCache(tc.name)
			requireInvalidName(t, err, tc.name)
		})
	}
}

func TestTopicNamesValid(t *testing.T) {
	cases := append(append([]nameCase{}, validNames...), topicOnlyNames...)
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			ctx := context.Background()
			c := newCache(t)

			s := subscribe(t, c, tc.name)
			require.NoError(t, c.Publish(ctx, tc.name, []byte("bytes")))
			require.NoError(t, c.PublishString(ctx, tc.name, "text"))
			it := next(t, s)
			assert.Equal(t, tc.name, it.Topic)
			assert.Equal(t, "bytes", it.Value.String())
			it = next(t, s)
			assert.Equal(t, tc.name, it.Topic)
			assert.Equal(t, "text", it.Value.String())

			h, err := topics.TopicOf[topics.Value](c, tc.name)
			require.NoError(t, err)
			assert.Equal(t, tc.name, h.Name())
			require.NoError(t, h.Publish(ctx, topics.TextValue("typed")))
			it = next(t, s)
			assert.Equal(t, tc.name, it.Topic)
			assert.Equal(t, "typed", it.Value.String())

			_, err = topics.TopicOf[int](c, tc.name)
			require.ErrorIs(t, err, topics.ErrTopicType, "the topic carries Values, not ints")

			c2 := newCache(t)
			ti, err := topics.TopicOf[int](c2, tc.name)
			require.NoError(t, err)
			assert.Equal(t, tc.name, ti.Name())
			si, err := ti.Subscribe(ctx)
			require.NoError(t, err)
			defer si.Close()
			require.NoError(t, ti.Publish(ctx, 42))
			iti := next(t, si)
			assert.Equal(t, tc.name, iti.Topic)
			assert.Equal(t, 42, iti.Value)
		})
	}
}

func TestTopicNamesInvalid(t *testing.T) {
	for _, tc := range invalidNames {
		t.Run(tc.desc, func(t *testing.T) {
			ctx := context.Background()
			c := newCache(t, topics.WithMaxTopics(1))

			err := c.Publish(ctx, tc.name, []byte("x"))
			requireInvalidName(t, err, tc.name)

			err = c.PublishString(ctx, tc.name, "x")
			requireInvalidName(t, err, tc.name)

			s, err := c.Subscribe(ctx, tc.name)
			requireInvalidName(t, err, tc.name)
			assert.Nil(t, s)

			h, err := topics.TopicOf[topics.Value](c, tc.name)
			requireInvalidName(t, err, tc.name)
			assert.Nil(t, h)

			hi, err := topics.TopicOf[int](c, tc.name)
			requireInvalidName(t, err, tc.name)
			assert.Nil(t, hi)

			// Nothing was created: the cache's one topic is still free.
			require.NoError(t, c.PublishString(ctx, "valid", "x"))
			require.ErrorIs(t, c.PublishString(ctx, "another", "x"), topics.ErrLimitExceeded)
		})
	}
}

// A refused name is shown quoted, shortened when long; the offending
// character is shown as a character, or as a byte in hex where the name is
// not UTF-8.
func TestInvalidNameMessages(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, tc := range []struct{ name, want string }{
		{"", `topics: invalid name: cache name is empty`},
		{"é", `topics: invalid name: cache name "é" has 'é' at byte 0; allowed are A-Z a-z 0-9 . _ -`},
		{"a/日本", `topics: invalid name: cache name "a/日本" has '/' at byte 1; allowed are A-Z a-z 0-9 . _ -`},
		{"ab日本", `topics: invalid name: cache name "ab日本" has '日' at byte 2; allowed are A-Z a-z 0-9 . _ -`},
		{"a\u200bb", `topics: invalid name: cache name "a\u200bb" has '\u200b' at byte 1; allowed are A-Z a-z 0-9 . _ -`},
		{"a\x00b", `topics: invalid name: cache name "a\x00b" has '\x00' at byte 1; allowed are A-Z a-z 0-9 . _ -`},
		{"a\xffb", `topics: invalid name: cache name "a\xffb" has the byte 0xff, which is not UTF-8, at byte 1; allowed are A-Z a-z 0-9 . _ -`},
		{"ab\xe6\x97", `topics: invalid name: cache name "ab\xe6\x97" has the byte 0xe6, which is not UTF-8, at byte 2; allowed are A-Z a-z 0-9 . _ -`},
		{long, `topics: invalid name: cache name "` + long[:64] + `"… (300 bytes) is longer than 255 bytes`},
		{strings.Repeat("a", 253) + "é", `topics: invalid name: cache name "` + strings.Repeat("a", 64) + `"… (255 bytes) has 'é' at byte 253; allowed are A-Z a-z 0-9 . _ -`},
		// Cut before the character that byte 64 is in the middle of.
		{strings.Repeat("a", 63) + "日本", `topics: invalid name: cache name "` + strings.Repeat("a", 63) + `"… (69 bytes) has '日' at byte 63; allowed are A-Z a-z 0-9 . _ -`},
	} {
		err := topics.ValidateCacheName(tc.name)
		require.ErrorIs(t, err, topics.ErrInvalidName)
		assert.Equal(t, tc.want, err.Error())
	}
	err := topics.ValidateTopicName("orders/é")
	assert.EqualError(t, err, `topics: invalid name: topic name "orders/é" has 'é' at byte 7; allowed are A-Z a-z 0-9 . _ - / :`)
}
