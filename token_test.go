package topics_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

// Test keys: fixed, so that tokens minted in a synctest bubble (whose clock
// always starts at the same instant) are the same in every run.
var (
	key1 = bytes.Repeat([]byte("key one, at least 32 bytes long."), 1)
	key2 = bytes.Repeat([]byte("key two, at least 32 bytes long."), 1)
	key3 = bytes.Repeat([]byte("key three, 32 bytes or longer..."), 1)
)

// tokenEngine returns an engine signing with key1, closed when the test ends.
func tokenEngine(t testing.TB, opts ...topics.Option) *topics.Engine {
	t.Helper()
	e := topics.New(append([]topics.Option{topics.WithTokenKeys(key1)}, opts...)...)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// grant returns a token description for id, valid for ttl from now.
func grant(id string, ttl time.Duration, perms ...topics.Permission) topics.Token {
	return topics.Token{ID: id, Expires: time.Now().Add(ttl), Permissions: perms}
}

func mint(t testing.TB, e *topics.Engine, tok topics.Token) string {
	t.Helper()
	s, err := e.MintToken(tok)
	require.NoError(t, err)
	return s
}

func newSession(t testing.TB, e *topics.Engine, token string) *topics.Session {
	t.Helper()
	s, err := e.Session(token)
	require.NoError(t, err)
	require.NotNil(t, s)
	return s
}

var chatRooms = topics.Permission{Role: topics.PublishSubscribe, Cache: topics.CacheName("chat"), Topic: topics.TopicPrefix("room/")}

func TestTokenRoundTrip(t *testing.T) {
	e := tokenEngine(t)
	perms := []topics.Permission{
		chatRooms,
		{Role: topics.SubscribeOnly, Cache: topics.AllCaches(), Topic: topics.TopicName("announcements")},
		{Role: topics.PublishOnly, Cache: topics.CacheName("logs"), Topic: topics.AllTopics()},
	}
	want := grant("ada@example.com", 10*time.Minute, perms...)
	s := newSession(t, e, mint(t, e, want))

	got := s.Token()
	assert.Equal(t, want.ID, got.ID)
	assert.Equal(t, perms, got.Permissions)
	assert.Equal(t, want.Expires.UnixMilli(), got.Expires.UnixMilli(), "expiry kept to the millisecond")
	assert.False(t, got.Expires.After(want.Expires), "rounded down, never later than asked")

	// Token returns a copy the caller owns.
	got.Permissions[0] = topics.Permission{}
	assert.Equal(t, perms, s.Token().Permissions)
}

func TestTokenStringShape(t *testing.T) {
	e := tokenEngine(t)
	tok := mint(t, e, grant("ada", time.Minute, chatRooms))
	assert.Regexp(t, `^[A-Za-z0-9_-]+$`, tok, "base64url, no padding")
	assert.Less(t, len(tok), 100, "one permission makes a compact token: %d bytes", len(tok))

	// The largest token there can be is exactly MaxTokenLen long, and is
	// accepted.
	var perms []topics.Permission
	for i := range topics.MaxTokenPermissions {
		name := strings.Repeat(string(rune('a'+i)), topics.MaxNameLen)
		perms = append(perms, topics.Permission{Role: topics.PublishSubscribe, Cache: topics.CacheName(name), Topic: topics.TopicPrefix(name)})
	}
	big := mint(t, e, grant(strings.Repeat("i", topics.MaxTokenIDLen), time.Minute, perms...))
	assert.Len(t, big, topics.MaxTokenLen)
	assert.Equal(t, perms, newSession(t, e, big).Token().Permissions)
}

func TestTokenMintRefused(t *testing.T) {
	e := tokenEngine(t, topics.WithMaxTokenLifetime(time.Hour))
	ok := chatRooms
	many := make([]topics.Permission, topics.MaxTokenPermissions+1)
	for i := range many {
		many[i] = ok
	}
	cases := []struct {
		desc string
		tok  topics.Token
		want error
		says string // part of the message
	}{
		{"no expiry", topics.Token{Permissions: []topics.Permission{ok}}, topics.ErrTokenInvalid, "Expires"},
		{"expired", grant("", -time.Second, ok), topics.ErrTokenInvalid, "not in the future"},
		{"expires now", topics.Token{Expires: time.Now(), Permissions: []topics.Permission{ok}}, topics.ErrTokenInvalid, "not in the future"},
		{"beyond max lifetime", grant("", time.Hour+time.Minute, ok), topics.ErrTokenInvalid, "maximum token lifetime"},
		{"no permissions", grant("", time.Minute), topics.ErrTokenInvalid, "0 permissions"},
		{"too many permissions", grant("", time.Minute, many...), topics.ErrTokenInvalid, "17 permissions"},
		{"zero role", grant("", time.Minute, topics.Permission{Cache: topics.AllCaches(), Topic: topics.AllTopics()}), topics.ErrTokenInvalid, "Role(0)"},
		{"unknown role", grant("", time.Minute, topics.Permission{Role: 4, Cache: topics.AllCaches(), Topic: topics.AllTopics()}), topics.ErrTokenInvalid, "Role(4)"},
		{"zero cache", grant("", time.Minute, topics.Permission{Role: topics.PublishOnly, Topic: topics.AllTopics()}), topics.ErrTokenInvalid, "no cache"},
		{"empty cache name", grant("", time.Minute, topics.Permission{Role: topics.PublishOnly, Cache: topics.CacheName(""), Topic: topics.AllTopics()}), topics.ErrTokenInvalid, "no cache"},
		{"zero topic", grant("", time.Minute, topics.Permission{Role: topics.PublishOnly, Cache: topics.AllCaches()}), topics.ErrTokenInvalid, "no topic"},
		{"bad cache name", grant("", time.Minute, topics.Permission{Role: topics.PublishOnly, Cache: topics.CacheName("a/b"), Topic: topics.AllTopics()}), topics.ErrInvalidName, `"a/b"`},
		{"wildcard cache name", grant("", time.Minute, topics.Permission{Role: topics.PublishOnly, Cache: topics.CacheName("*"), Topic: topics.AllTopics()}), topics.ErrInvalidName, `"*"`},
		{"bad topic name", grant("", time.Minute, topics.Permission{Role: topics.PublishOnly, Cache: topics.AllCaches(), Topic: topics.TopicName("room/*")}), topics.ErrInvalidName, `"room/*"`},
		{"bad topic prefix", grant("", time.Minute, topics.Permission{Role: topics.PublishOnly, Cache: topics.AllCaches(), Topic: topics.TopicPrefix("room *")}), topics.ErrInvalidName, `"room *"`},
		{"empty topic prefix", grant("", time.Minute, topics.Permission{Role: topics.PublishOnly, Cache: topics.AllCaches(), Topic: topics.TopicPrefix("")}), topics.ErrInvalidName, "empty"},
		{"long topic prefix", grant("", time.Minute, topics.Permission{Role: topics.PublishOnly, Cache: topics.AllCaches(), Topic: topics.TopicPrefix(strings.Repeat("p", 256))}), topics.ErrInvalidName, "256 bytes"},
		{"long ID", grant(strings.Repeat("i", topics.MaxTokenIDLen+1), time.Minute, ok), topics.ErrTokenInvalid, "65 bytes"},
		{"ID with a line break", grant("ada\nroot", time.Minute, ok), topics.ErrTokenInvalid, "U+000A"},
		{"ID with a tab", grant("ada\t", time.Minute, ok), topics.ErrTokenInvalid, "U+0009"},
		{"ID not UTF-8", grant("ada\xff", time.Minute, ok), topics.ErrTokenInvalid, "UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			s, err := e.MintToken(c.tok)
			require.ErrorIs(t, err, c.want)
			assert.Contains(t, err.Error(), c.says)
			assert.Empty(t, s)
		})
	}

	// The limits themselves are fine.
	for _, tok := range []topics.Token{
		grant(strings.Repeat("i", topics.MaxTokenIDLen), time.Minute, ok),
		grant("Ada Lovelace 🚂", time.Minute, ok),
		grant("", time.Hour, many[1:]...),
	} {
		newSession(t, e, mint(t, e, tok))
	}
}

func TestTokenEngineWithoutKeys(t *testing.T) {
	e := topics.New()
	defer e.Close()
	_, err := e.MintToken(grant("", time.Minute, chatRooms))
	require.ErrorIs(t, err, topics.ErrInvalidOption)
	assert.Contains(t, err.Error(), "WithTokenKeys")

	signer := tokenEngine(t)
	_, err = e.Session(mint(t, signer, grant("", time.Minute, chatRooms)))
	require.ErrorIs(t, err, topics.ErrInvalidOption)
	assert.NotErrorIs(t, err, topics.ErrTokenInvalid, "a server misconfiguration is not the client's fault")
}

func TestTokenOptions(t *testing.T) {
	short := make([]byte, topics.MinTokenKeyLen-1)
	bad := []struct {
		desc string
		opt  topics.Option
		says string
	}{
		{"short newest key", topics.WithTokenKeys(short), "31 bytes"},
		{"short older key", topics.WithTokenKeys(key1, key2, short), "key 2 is 31 bytes"},
		{"nil key", topics.WithTokenKeys(nil), "key 0 is 0 bytes"},
		{"same key twice", topics.WithTokenKeys(key1, key2, bytes.Clone(key1)), "key 2 is the same as key 0"},
		{"zero lifetime", topics.WithMaxTokenLifetime(0), "WithMaxTokenLifetime(0s)"},
		{"negative lifetime", topics.WithMaxTokenLifetime(-time.Minute), "WithMaxTokenLifetime(-1m0s)"},
	}
	for _, b := range bad {
		t.Run(b.desc, func(t *testing.T) {
			e := topics.New(b.opt)
			defer e.Close()
			_, err := e.CreateCache("c")
			require.ErrorIs(t, err, topics.ErrInvalidOption)
			assert.Contains(t, err.Error(), b.says)
			// The token calls report the same error.
			_, err = e.MintToken(grant("", time.Minute, chatRooms))
			require.ErrorIs(t, err, topics.ErrInvalidOption)
			assert.Contains(t, err.Error(), b.says)
			_, err = e.Session("AQ")
			require.ErrorIs(t, err, topics.ErrInvalidOption)
		})
	}

	// Engine options are refused where a cache is configured.
	for _, opt := range []topics.Option{topics.WithTokenKeys(key1), topics.WithMaxTokenLifetime(time.Minute)} {
		_, err := topics.NewCache("c", opt)
		require.ErrorIs(t, err, topics.ErrInvalidOption)
		assert.Contains(t, err.Error(), "configures an engine")
		e := topics.New()
		_, err = e.CreateCache("c", opt)
		require.ErrorIs(t, err, topics.ErrInvalidOption)
		assert.Empty(t, e.ListCaches(), "a refused CreateCache creates nothing")
		require.NoError(t, e.Close())
	}

	// As engine options they leave caches alone.
	e := tokenEngine(t, topics.WithMaxTokenLifetime(time.Minute), topics.WithMaxTopics(3))
	_, err := e.CreateCache("c")
	require.NoError(t, err)
}

func TestTokenKeysCopied(t *testing.T) {
	k := bytes.Clone(key1)
	e := topics.New(topics.WithTokenKeys(k))
	defer e.Close()
	tok := mint(t, e, grant("", time.Minute, chatRooms))
	k[0] ^= 1 // the caller's slice is the caller's
	newSession(t, e, tok)
	mint(t, e, grant("", time.Minute, chatRooms))

	other := topics.New(topics.WithTokenKeys(key2))
	defer other.Close()
	k2 := bytes.Clone(key2)
	require.NoError(t, other.SetTokenKeys(k2))
	k2[0] ^= 1
	newSession(t, other, mint(t, other, grant("", time.Minute, chatRooms)))
}

// TestTokenRotation: a token verifies while its key is listed, and fails
// once the key is dropped; new tokens are signed with the newest key.
func TestTokenRotation(t *testing.T) {
	perm := chatRooms
	old := tokenEngine(t) // key1 only
	tok1 := mint(t, old, grant("one", time.Minute, perm))

	rotated := topics.New(topics.WithTokenKeys(key2, key1))
	defer rotated.Close()
	newSession(t, rotated, tok1) // the old key still verifies
	tok2 := mint(t, rotated, grant("two", time.Minute, perm))

	onlyNew := topics.New(topics.WithTokenKeys(key2))
	defer onlyNew.Close()
	newSession(t, onlyNew, tok2) // signed with the newest key...
	_, err := old.Session(tok2)  // ...not with the old one
	require.ErrorIs(t, err, topics.ErrTokenInvalid)
	_, err = onlyNew.Session(tok1) // the old key was dropped
	require.ErrorIs(t, err, topics.ErrTokenInvalid)
	assert.Contains(t, err.Error(), "not signed by any of the engine's keys")

	// The same on a running engine, whose caches and sessions live on.
	live := tokenEngine(t)
	_, err = live.CreateCache("chat")
	require.NoError(t, err)
	early := newSession(t, live, tok1)
	require.NoError(t, live.SetTokenKeys(key2, key1))
	newSession(t, live, tok1)
	newSession(t, onlyNew, mint(t, live, grant("", time.Minute, perm)))
	require.NoError(t, live.SetTokenKeys(key2))
	_, err = live.Session(tok1)
	require.ErrorIs(t, err, topics.ErrTokenInvalid)
	require.NoError(t, early.PublishString(t.Context(), "chat", "room/1", "x"), "a session outlives a key change")

	// A refused SetTokenKeys keeps the keys.
	require.ErrorIs(t, live.SetTokenKeys(key3, key3), topics.ErrInvalidOption)
	require.ErrorIs(t, live.SetTokenKeys(key3[:31]), topics.ErrInvalidOption)
	newSession(t, onlyNew, mint(t, live, grant("", time.Minute, perm)))
}

// TestTokenKeyIDCollision: two keys whose key IDs (a byte of their hash)
// are equal both verify their tokens.
func TestTokenKeyIDCollision(t *testing.T) {
	a := bytes.Clone(key1)
	idOf := func(k []byte) byte { s := sha256.Sum256(k); return s[0] }
	b := bytes.Clone(key2)
	for i := 0; idOf(b) != idOf(a); i++ {
		binary.BigEndian.PutUint32(b, uint32(i))
	}
	signA := topics.New(topics.WithTokenKeys(a))
	defer signA.Close()
	signB := topics.New(topics.WithTokenKeys(b))
	defer signB.Close()
	both := topics.New(topics.WithTokenKeys(a, b))
	defer both.Close()
	for _, signer := range []*topics.Engine{signA, signB} {
		newSession(t, both, mint(t, signer, grant("", time.Minute, chatRooms)))
	}
	_, err := signA.Session(mint(t, signB, grant("", time.Minute, chatRooms)))
	require.ErrorIs(t, err, topics.ErrTokenInvalid)
}

func TestTokenLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := tokenEngine(t, topics.WithMaxTokenLifetime(10*time.Minute))
		_, err := e.MintToken(grant("", 10*time.Minute+time.Millisecond, chatRooms))
		require.ErrorIs(t, err, topics.ErrTokenInvalid)
		tok := mint(t, e, grant("ada", 10*time.Minute, chatRooms))
		s := newSession(t, e, tok)

		// A token that claims more than the verifier's maximum lifetime is
		// refused: lowering the maximum cuts such tokens short.
		strict := topics.New(topics.WithTokenKeys(key1), topics.WithMaxTokenLifetime(time.Minute))
		defer strict.Close()
		_, err = strict.Session(tok)
		require.ErrorIs(t, err, topics.ErrTokenInvalid)
		assert.Contains(t, err.Error(), "maximum token lifetime")

		time.Sleep(10*time.Minute - time.Millisecond)
		newSession(t, e, tok)
		_, err = strict.Session(tok) // now within a minute of its expiry
		require.NoError(t, err)

		time.Sleep(time.Millisecond)
		_, err = e.Session(tok)
		require.ErrorIs(t, err, topics.ErrTokenExpired)
		assert.NotErrorIs(t, err, topics.ErrTokenInvalid)
		assert.Contains(t, err.Error(), `"ada"`)
		// A session made earlier refuses everything from now on.
		_, err = e.CreateCache("chat")
		require.NoError(t, err)
		require.ErrorIs(t, s.PublishString(t.Context(), "chat", "room/1", "x"), topics.ErrTokenExpired)
		_, err = s.Subscribe(t.Context(), "chat", "room/1")
		require.ErrorIs(t, err, topics.ErrTokenExpired)
	})
}

// signed returns the token string of body signed with key: the token
// format is documented in token.go, and these tests build tokens that
// MintToken would not, to check that the parser refuses them even when they
// carry a valid signature.
func signed(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return base64.RawURLEncoding.EncodeToString(m.Sum(bytes.Clone(body)))
}

// body returns the signed bytes of a token, without its MAC.
func body(t testing.TB, token string) []byte {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(token)
	require.NoError(t, err)
	return raw[:len(raw)-sha256.Size]
}

func TestTokenMalformed(t *testing.T) {
	e := tokenEngine(t)
	tok := mint(t, e, grant("ada", time.Minute, chatRooms))
	b := body(t, tok)
	require.Equal(t, tok, signed(key1, b), "the tests know the format")

	edit := func(f func(b []byte) []byte) string { return signed(key1, f(bytes.Clone(b))) }
	cases := []struct {
		desc  string
		token string
		says  string
	}{
		{"empty", "", "0 bytes long"},
		{"short", "AQ", "2 bytes long"},
		{"absurdly long", strings.Repeat("A", topics.MaxTokenLen+1), "bytes long"},
		{"line break", tok[:20] + "\n" + tok[20:], `'\n'`},
		{"space", tok[:20] + " " + tok[20:], `' '`},
		{"padding", tok + "=", `'='`},
		{"standard base64", strings.NewReplacer("-", "+", "_", "/").Replace(tok) + "+/", "base64url does not use"},
		{"impossible length", tok + "AA", "not base64url"},
		{"extra character", tok + "A", "not signed"},
		{"dropped character", tok[:len(tok)-1], ""},
		{"unknown version", edit(func(b []byte) []byte { b[0] = 2; return b }), "unknown version 2"},
		{"version 0", edit(func(b []byte) []byte { b[0] = 0; return b }), "unknown version 0"},
		{"unknown key ID", edit(func(b []byte) []byte { b[1]++; return b }), "not signed"},
		{"trailing byte", edit(func(b []byte) []byte { return append(b, 0) }), "1 bytes after the last permission"},
		{"trailing permission", edit(func(b []byte) []byte { return append(b, 0b01011, 1, 'x') }), "3 bytes after"},
		{"truncated", edit(func(b []byte) []byte { return b[:len(b)-1] }), "truncated"},
		{"no permissions", edit(func(b []byte) []byte { return b[:10+1+3+1] }), "truncated"},
		{"zero count", edit(func(b []byte) []byte { b[14] = 0; return b[:15] }), "0 permissions"},
		{"17 permissions", edit(func(b []byte) []byte { b[14] = 17; return b }), "17 permissions"},
		{"unused flag bit", edit(func(b []byte) []byte { b[15] |= 1 << 7; return b }), "flags"},
		{"role 0", edit(func(b []byte) []byte { b[15] &^= 3; return b }), "flags"},
		{"topic kind 3", edit(func(b []byte) []byte { b[15] |= 3 << 3; return b }), "flags"},
		{"ID too long", edit(func(b []byte) []byte { b[10] = 65; return b }), "ID of 65 bytes"},
		{"ID unprintable", edit(func(b []byte) []byte { b[11] = '\n'; return b }), "unprintable"},
		{"bad cache name", edit(func(b []byte) []byte { b[17] = '/'; return b }), "invalid cache name"},
		{"empty cache name", edit(func(b []byte) []byte { return append(b[:16], 0) }), "cache name of 0 bytes"},
		{"bad topic prefix", edit(func(b []byte) []byte { b[len(b)-1] = '*'; return b }), "invalid topic prefix"},
		{"expiry out of range", edit(func(b []byte) []byte { b[2] = 0xff; return b }), "expiry out of range"},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			s, err := e.Session(c.token)
			require.ErrorIs(t, err, topics.ErrTokenInvalid)
			assert.Contains(t, err.Error(), c.says)
			assert.Nil(t, s)
			assert.NotContains(t, err.Error(), tok, "errors do not repeat tokens")
		})
	}
}
