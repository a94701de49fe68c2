package access_test

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
	"github.com/ringbus/topics/access"
)

// Test keys: fixed, so that tokens minted in a synctest bubble (whose clock
// always starts at the same instant) are the same in every run.
var (
	key1 = bytes.Repeat([]byte("key one, at least 32 bytes long."), 1)
	key2 = bytes.Repeat([]byte("key two, at least 32 bytes long."), 1)
	key3 = bytes.Repeat([]byte("key three, 32 bytes or longer..."), 1)
)

// An authEngine is an engine with its authority: the engine's calls and the
// authority's (Mint, Session, SetKeys) on one value.
type authEngine struct {
	*topics.Engine
	*access.Authority
}

// tokenEngine returns an engine with options opts and an authority signing
// with key1, closed when the test ends.
func tokenEngine(t testing.TB, opts ...topics.Option) *authEngine {
	t.Helper()
	return newAuthEngine(t, topics.New(opts...), access.WithKeys(key1))
}

// withAuth returns an engine with an authority made with opts, closed when
// the test ends.
func withAuth(t testing.TB, opts ...access.Option) *authEngine {
	t.Helper()
	return newAuthEngine(t, topics.New(), opts...)
}

func newAuthEngine(t testing.TB, e *topics.Engine, opts ...access.Option) *authEngine {
	t.Helper()
	t.Cleanup(func() { _ = e.Close() })
	a, err := access.New(e, opts...)
	require.NoError(t, err)
	return &authEngine{e, a}
}

// grant returns a token description for id, valid for ttl from now.
func grant(id string, ttl time.Duration, perms ...access.Permission) access.Token {
	return access.Token{ID: id, Expires: time.Now().Add(ttl), Permissions: perms}
}

func mint(t testing.TB, e *authEngine, tok access.Token) string {
	t.Helper()
	s, err := e.Mint(tok)
	require.NoError(t, err)
	return s
}

func newSession(t testing.TB, e *authEngine, token string) *access.Session {
	t.Helper()
	s, err := e.Session(token)
	require.NoError(t, err)
	require.NotNil(t, s)
	return s
}

var chatRooms = access.Permission{Role: access.PublishSubscribe, Cache: access.CacheName("chat"), Topic: access.TopicPrefix("room/")}

func TestTokenRoundTrip(t *testing.T) {
	e := tokenEngine(t)
	perms := []access.Permission{
		chatRooms,
		{Role: access.SubscribeOnly, Cache: access.AllCaches(), Topic: access.TopicName("announcements")},
		{Role: access.PublishOnly, Cache: access.CacheName("logs"), Topic: access.AllTopics()},
	}
	want := grant("ada@example.com", 10*time.Minute, perms...)
	s := newSession(t, e, mint(t, e, want))

	got := s.Token()
	assert.Equal(t, want.ID, got.ID)
	assert.Equal(t, perms, got.Permissions)
	assert.Equal(t, want.Expires.UnixMilli(), got.Expires.UnixMilli(), "expiry kept to the millisecond")
	assert.False(t, got.Expires.After(want.Expires), "rounded down, never later than asked")

	// Token returns a copy the caller owns.
	got.Permissions[0] = access.Permission{}
	assert.Equal(t, perms, s.Token().Permissions)
}

func TestTokenStringShape(t *testing.T) {
	e := tokenEngine(t)
	tok := mint(t, e, grant("ada", time.Minute, chatRooms))
	assert.Regexp(t, `^[A-Za-z0-9_-]+$`, tok, "base64url, no padding")
	assert.Less(t, len(tok), 100, "one permission makes a compact token: %d bytes", len(tok))

	// The largest token there can be is exactly MaxTokenLen long, and is
	// accepted.
	var perms []access.Permission
	for i := range access.MaxPermissions {
		name := strings.Repeat(string(rune('a'+i)), topics.MaxNameLen)
		perms = append(perms, access.Permission{Role: access.PublishSubscribe, Cache: access.CacheName(name), Topic: access.TopicPrefix(name)})
	}
	big := mint(t, e, grant(strings.Repeat("i", access.MaxIDLen), time.Minute, perms...))
	assert.Len(t, big, access.MaxTokenLen)
	assert.Equal(t, perms, newSession(t, e, big).Token().Permissions)
}

func TestTokenMintRefused(t *testing.T) {
	e := withAuth(t, access.WithKeys(key1), access.WithMaxLifetime(time.Hour))
	ok := chatRooms
	many := make([]access.Permission, access.MaxPermissions+1)
	for i := range many {
		many[i] = ok
	}
	cases := []struct {
		desc string
		tok  access.Token
		want error
		says string // part of the message
	}{
		{"no expiry", access.Token{Permissions: []access.Permission{ok}}, access.ErrTokenInvalid, "Expires"},
		{"expired", grant("", -time.Second, ok), access.ErrTokenInvalid, "not in the future"},
		{"expires now", access.Token{Expires: time.Now(), Permissions: []access.Permission{ok}}, access.ErrTokenInvalid, "not in the future"},
		{"beyond max lifetime", grant("", time.Hour+time.Minute, ok), access.ErrTokenInvalid, "maximum token lifetime"},
		{"no permissions", grant("", time.Minute), access.ErrTokenInvalid, "0 permissions"},
		{"too many permissions", grant("", time.Minute, many...), access.ErrTokenInvalid, "17 permissions"},
		{"zero role", grant("", time.Minute, access.Permission{Cache: access.AllCaches(), Topic: access.AllTopics()}), access.ErrTokenInvalid, "Role(0)"},
		{"unknown role", grant("", time.Minute, access.Permission{Role: 4, Cache: access.AllCaches(), Topic: access.AllTopics()}), access.ErrTokenInvalid, "Role(4)"},
		{"zero cache", grant("", time.Minute, access.Permission{Role: access.PublishOnly, Topic: access.AllTopics()}), access.ErrTokenInvalid, "no cache"},
		{"empty cache name", grant("", time.Minute, access.Permission{Role: access.PublishOnly, Cache: access.CacheName(""), Topic: access.AllTopics()}), access.ErrTokenInvalid, "no cache"},
		{"zero topic", grant("", time.Minute, access.Permission{Role: access.PublishOnly, Cache: access.AllCaches()}), access.ErrTokenInvalid, "no topic"},
		{"bad cache name", grant("", time.Minute, access.Permission{Role: access.PublishOnly, Cache: access.CacheName("a/b"), Topic: access.AllTopics()}), topics.ErrInvalidName, `"a/b"`},
		{"wildcard cache name", grant("", time.Minute, access.Permission{Role: access.PublishOnly, Cache: access.CacheName("*"), Topic: access.AllTopics()}), topics.ErrInvalidName, `"*"`},
		{"bad topic name", grant("", time.Minute, access.Permission{Role: access.PublishOnly, Cache: access.AllCaches(), Topic: access.TopicName("room/*")}), topics.ErrInvalidName, `"room/*"`},
		{"bad topic prefix", grant("", time.Minute, access.Permission{Role: access.PublishOnly, Cache: access.AllCaches(), Topic: access.TopicPrefix("room *")}), topics.ErrInvalidName, `"room *"`},
		{"empty topic prefix", grant("", time.Minute, access.Permission{Role: access.PublishOnly, Cache: access.AllCaches(), Topic: access.TopicPrefix("")}), topics.ErrInvalidName, "empty"},
		{"long topic prefix", grant("", time.Minute, access.Permission{Role: access.PublishOnly, Cache: access.AllCaches(), Topic: access.TopicPrefix(strings.Repeat("p", 256))}), topics.ErrInvalidName, "256 bytes"},
		{"long ID", grant(strings.Repeat("i", access.MaxIDLen+1), time.Minute, ok), access.ErrTokenInvalid, "65 bytes"},
		{"ID with a line break", grant("ada\nroot", time.Minute, ok), access.ErrTokenInvalid, "U+000A"},
		{"ID with a tab", grant("ada\t", time.Minute, ok), access.ErrTokenInvalid, "U+0009"},
		{"ID not UTF-8", grant("ada\xff", time.Minute, ok), access.ErrTokenInvalid, "UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.desc, func(t *testing.T) {
			s, err := e.Mint(c.tok)
			require.ErrorIs(t, err, c.want)
			assert.Contains(t, err.Error(), c.says)
			assert.Empty(t, s)
		})
	}

	// The limits themselves are fine.
	for _, tok := range []access.Token{
		grant(strings.Repeat("i", access.MaxIDLen), time.Minute, ok),
		grant("Ada Lovelace 🚂", time.Minute, ok),
		grant("", time.Hour, many[1:]...),
	} {
		newSession(t, e, mint(t, e, tok))
	}
}

func TestAuthorityOptions(t *testing.T) {
	e := topics.New()
	defer e.Close()
	short := make([]byte, access.MinKeyLen-1)
	bad := []struct {
		desc string
		opts []access.Option
		says string
	}{
		{"no keys", nil, "WithKeys"},
		{"nil option", []access.Option{nil}, "nil Option"},
		{"short newest key", []access.Option{access.WithKeys(short)}, "31 bytes"},
		{"short older key", []access.Option{access.WithKeys(key1, key2, short)}, "key 2 is 31 bytes"},
		{"nil key", []access.Option{access.WithKeys(nil)}, "key 0 is 0 bytes"},
		{"same key twice", []access.Option{access.WithKeys(key1, key2, bytes.Clone(key1))}, "key 2 is the same as key 0"},
		{"zero lifetime", []access.Option{access.WithKeys(key1), access.WithMaxLifetime(0)}, "WithMaxLifetime(0s)"},
		{"negative lifetime", []access.Option{access.WithKeys(key1), access.WithMaxLifetime(-time.Minute)}, "WithMaxLifetime(-1m0s)"},
	}
	for _, b := range bad {
		t.Run(b.desc, func(t *testing.T) {
			a, err := access.New(e, b.opts...)
			require.ErrorIs(t, err, topics.ErrInvalidOption)
			assert.Contains(t, err.Error(), b.says)
			assert.Nil(t, a)
		})
	}
	_, err := access.New(nil, access.WithKeys(key1))
	require.ErrorIs(t, err, topics.ErrInvalidOption)
}

func TestTokenKeysCopied(t *testing.T) {
	k := bytes.Clone(key1)
	e := withAuth(t, access.WithKeys(k))
	defer e.Close()
	tok := mint(t, e, grant("", time.Minute, chatRooms))
	k[0] ^= 1 // the caller's slice is the caller's
	newSession(t, e, tok)
	mint(t, e, grant("", time.Minute, chatRooms))

	other := withAuth(t, access.WithKeys(key2))
	defer other.Close()
	k2 := bytes.Clone(key2)
	require.NoError(t, other.SetKeys(k2))
	k2[0] ^= 1
	newSession(t, other, mint(t, other, grant("", time.Minute, chatRooms)))
}

// TestTokenRotation: a token verifies while its key is listed, and fails
// once the key is dropped; new tokens are signed with the newest key.
func TestTokenRotation(t *testing.T) {
	perm := chatRooms
	old := tokenEngine(t) // key1 only
	tok1 := mint(t, old, grant("one", time.Minute, perm))

	rotated := withAuth(t, access.WithKeys(key2, key1))
	defer rotated.Close()
	newSession(t, rotated, tok1) // the old key still verifies
	tok2 := mint(t, rotated, grant("two", time.Minute, perm))

	onlyNew := withAuth(t, access.WithKeys(key2))
	defer onlyNew.Close()
	newSession(t, onlyNew, tok2) // signed with the newest key...
	_, err := old.Session(tok2)  // ...not with the old one
	require.ErrorIs(t, err, access.ErrTokenInvalid)
	_, err = onlyNew.Session(tok1) // the old key was dropped
	require.ErrorIs(t, err, access.ErrTokenInvalid)
	assert.Contains(t, err.Error(), "not signed by any of the authority's keys")

	// The same on a running engine, whose caches and sessions live on.
	live := tokenEngine(t)
	_, err = live.CreateCache("chat")
	require.NoError(t, err)
	early := newSession(t, live, tok1)
	require.NoError(t, live.SetKeys(key2, key1))
	newSession(t, live, tok1)
	newSession(t, onlyNew, mint(t, live, grant("", time.Minute, perm)))
	require.NoError(t, live.SetKeys(key2))
	_, err = live.Session(tok1)
	require.ErrorIs(t, err, access.ErrTokenInvalid)
	require.NoError(t, early.PublishString(t.Context(), "chat", "room/1", "x"), "a session outlives a key change")

	// A refused SetKeys keeps the keys.
	require.ErrorIs(t, live.SetKeys(key3, key3), topics.ErrInvalidOption)
	require.ErrorIs(t, live.SetKeys(key3[:31]), topics.ErrInvalidOption)
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
	signA := withAuth(t, access.WithKeys(a))
	defer signA.Close()
	signB := withAuth(t, access.WithKeys(b))
	defer signB.Close()
	both := withAuth(t, access.WithKeys(a, b))
	defer both.Close()
	for _, signer := range []*authEngine{signA, signB} {
		newSession(t, both, mint(t, signer, grant("", time.Minute, chatRooms)))
	}
	_, err := signA.Session(mint(t, signB, grant("", time.Minute, chatRooms)))
	require.ErrorIs(t, err, access.ErrTokenInvalid)
}

func TestTokenLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := withAuth(t, access.WithKeys(key1), access.WithMaxLifetime(10*time.Minute))
		_, err := e.Mint(grant("", 10*time.Minute+time.Millisecond, chatRooms))
		require.ErrorIs(t, err, access.ErrTokenInvalid)
		tok := mint(t, e, grant("ada", 10*time.Minute, chatRooms))
		s := newSession(t, e, tok)

		// A token that claims more than the verifier's maximum lifetime is
		// refused: lowering the maximum cuts such tokens short.
		strict := withAuth(t, access.WithKeys(key1), access.WithMaxLifetime(time.Minute))
		defer strict.Close()
		_, err = strict.Session(tok)
		require.ErrorIs(t, err, access.ErrTokenInvalid)
		assert.Contains(t, err.Error(), "maximum token lifetime")

		time.Sleep(10*time.Minute - time.Millisecond)
		newSession(t, e, tok)
		_, err = strict.Session(tok) // now within a minute of its expiry
		require.NoError(t, err)

		time.Sleep(time.Millisecond)
		_, err = e.Session(tok)
		require.ErrorIs(t, err, access.ErrTokenExpired)
		assert.NotErrorIs(t, err, access.ErrTokenInvalid)
		assert.Contains(t, err.Error(), `"ada"`)
		// A session made earlier refuses everything from now on.
		_, err = e.CreateCache("chat")
		require.NoError(t, err)
		require.ErrorIs(t, s.PublishString(t.Context(), "chat", "room/1", "x"), access.ErrTokenExpired)
		_, err = s.Subscribe(t.Context(), "chat", "room/1")
		require.ErrorIs(t, err, access.ErrTokenExpired)
	})
}

// signed returns the token string of body signed with key: the token
// format is documented in token.go, and these tests build tokens that
// Mint would not, to check that the parser refuses them even when they
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
		{"absurdly long", strings.Repeat("A", access.MaxTokenLen+1), "bytes long"},
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
			require.ErrorIs(t, err, access.ErrTokenInvalid)
			assert.Contains(t, err.Error(), c.says)
			assert.Nil(t, s)
			assert.NotContains(t, err.Error(), tok, "errors do not repeat tokens")
		})
	}
}
