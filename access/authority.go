package access

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ringbus/topics"
)

// Errors returned by this package, on top of those of package topics. Test
// them with errors.Is.
var (
	// ErrPermissionDenied: the token behind a Session does not grant what
	// was asked (publishing or subscribing to that topic of that cache).
	ErrPermissionDenied = errors.New("access: permission denied")
	// ErrTokenExpired: the token has expired. A subscription opened under a
	// token ends with an error wrapping both topics.ErrClosed and
	// ErrTokenExpired when the token expires. The remedy is a fresh token.
	ErrTokenExpired = errors.New("access: token expired")
	// ErrTokenInvalid: a token is malformed, was not signed by any of the
	// authority's keys (forged, altered, or signed with a key since
	// dropped), or, given to Mint, describes no token that can be minted.
	ErrTokenInvalid = errors.New("access: invalid token")
)

// Limits and defaults.
const (
	// DefaultMaxLifetime is the longest a token may live, from the moment it
	// is minted to its expiry, unless WithMaxLifetime says otherwise. Tokens
	// are meant to be short-lived: a client fetches a new one from its
	// server when its token expires.
	DefaultMaxLifetime = time.Hour
	// MinKeyLen is the shortest signing key accepted, in bytes: the output
	// size of SHA-256, as RFC 2104 (section 3) recommends for HMAC keys. Use
	// random keys (crypto/rand), not passwords.
	MinKeyLen = 32
	// MaxIDLen is the longest token ID, in bytes.
	MaxIDLen = 64
	// MaxPermissions is the most permissions one token may carry.
	MaxPermissions = 16
	// MaxTokenLen is the longest token string a valid token can be, in
	// bytes. Longer strings are refused before any decoding. Tokens are far
	// shorter in practice: about 90 bytes for one permission on one topic.
	MaxTokenLen = (maxTokenBytes*8 + 5) / 6
)

// An Authority mints the tokens of one engine and opens sessions on it from
// the tokens that clients present. It is safe for concurrent use. Create one
// with New; the zero Authority is not usable.
type Authority struct {
	engine      *topics.Engine
	keys        atomic.Pointer[keyring]
	maxLifetime time.Duration
}

// An Option configures an Authority.
type Option interface {
	apply(*config) error
}

type config struct {
	keys        *keyring
	maxLifetime time.Duration
}

type option func(*config) error

func (f option) apply(c *config) error { return f(c) }

// New returns an authority over the engine e. It needs keys (WithKeys), and
// returns an error wrapping topics.ErrInvalidOption without them or for an
// invalid option.
func New(e *topics.Engine, opts ...Option) (*Authority, error) {
	if e == nil {
		return nil, fmt.Errorf("%w: access.New: nil engine", topics.ErrInvalidOption)
	}
	cfg := config{maxLifetime: DefaultMaxLifetime}
	for _, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: access.New: nil Option", topics.ErrInvalidOption)
		}
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.keys == nil {
		return nil, fmt.Errorf("%w: access.New: no keys: give it WithKeys", topics.ErrInvalidOption)
	}
	a := &Authority{engine: e, maxLifetime: cfg.maxLifetime}
	a.keys.Store(cfg.keys)
	return a, nil
}

// WithKeys gives the authority the keys that sign and verify its tokens.
// newest signs new tokens; tokens signed with newest or any of older verify.
// To rotate keys, make a new key the newest and keep the previous one among
// older for as long as tokens signed with it may live (the maximum
// lifetime), then drop it; SetKeys does this on a running authority.
//
// Keys must be at least MinKeyLen bytes and distinct; keep them secret and
// random. WithKeys copies them.
func WithKeys(newest []byte, older ...[]byte) Option {
	return option(func(c *config) error {
		kr, err := newKeyring("WithKeys", newest, older)
		if err != nil {
			return err
		}
		c.keys = kr
		return nil
	})
}

// WithMaxLifetime sets the longest a token may live, from minting to expiry.
// Mint refuses a later expiry, and a token that claims one is refused as
// invalid (so lowering the maximum also cuts short tokens minted under a
// higher one). d must be positive. The default is DefaultMaxLifetime.
func WithMaxLifetime(d time.Duration) Option {
	return option(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithMaxLifetime(%v): must be positive", topics.ErrInvalidOption, d)
		}
		c.maxLifetime = d
		return nil
	})
}

// SetKeys replaces the authority's keys, as WithKeys sets them at New:
// newest signs tokens minted from now on, and tokens signed with newest or
// any of older verify. Sessions already opened stay valid until their tokens
// expire. It returns an error wrapping topics.ErrInvalidOption, and keeps
// the keys it had, if a key is shorter than MinKeyLen or given twice. It
// copies the keys.
func (a *Authority) SetKeys(newest []byte, older ...[]byte) error {
	kr, err := newKeyring("SetKeys", newest, older)
	if err != nil {
		return err
	}
	a.keys.Store(kr)
	return nil
}

// Mint returns a signed token string for t, signed with the newest key. The
// string is opaque to its holder, safe in a URL, a cookie or an HTTP header
// as it is (base64url without padding), and at most MaxTokenLen bytes. Hand
// it to a client; the client presents it back to the server, which calls
// Session with it.
//
// It returns an error wrapping topics.ErrInvalidName if a selector names an
// invalid cache or topic, and ErrTokenInvalid for any other fault of t: no
// or too many permissions, an invalid Role or a zero selector, an invalid
// ID, an Expires that is missing, past, or beyond the maximum lifetime.
func (a *Authority) Mint(t Token) (string, error) {
	if err := checkToken(&t, time.Now(), a.maxLifetime); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(encodeToken(&t, a.keys.Load().keys[0])), nil
}

// Session verifies a token string made by Mint and returns the session it
// opens. A Session made before the keys change stays valid until its token
// expires.
//
// It returns an error wrapping ErrTokenInvalid for a token that is
// malformed, altered, forged or signed with a key the authority no longer
// holds, and ErrTokenExpired for one that has expired (a server answers both
// with 401 Unauthorized, and the client fetches a new token).
func (a *Authority) Session(token string) (*Session, error) {
	t, err := a.verify(token, time.Now())
	if err != nil {
		return nil, err
	}
	return &Session{engine: a.engine, token: t}, nil
}

// A keyring is the authority's keys, newest first. It is immutable.
type keyring struct {
	keys []tokenKey
}

// A tokenKey is a signing key and its key ID, the byte that tokens signed
// with it carry so that verification finds the key without trying them all.
// The ID is the first byte of the key's SHA-256: public, and too short to
// tell anything about the key. Two keys may share an ID; verification then
// tries both.
type tokenKey struct {
	id  byte
	key []byte
}

func newKeyring(option string, newest []byte, older [][]byte) (*keyring, error) {
	all := append([][]byte{newest}, older...)
	kr := &keyring{keys: make([]tokenKey, 0, len(all))}
	for i, k := range all {
		if len(k) < MinKeyLen {
			return nil, fmt.Errorf("%w: %s: key %d is %d bytes; keys must be at least %d random bytes", topics.ErrInvalidOption, option, i, len(k), MinKeyLen)
		}
		for j, prev := range kr.keys {
			if bytes.Equal(prev.key, k) {
				return nil, fmt.Errorf("%w: %s: key %d is the same as key %d", topics.ErrInvalidOption, option, i, j)
			}
		}
		sum := sha256.Sum256(k)
		kr.keys = append(kr.keys, tokenKey{id: sum[0], key: bytes.Clone(k)})
	}
	return kr, nil
}

func (k tokenKey) sign(dst, body []byte) []byte {
	m := hmac.New(sha256.New, k.key)
	m.Write(body)
	return m.Sum(dst)
}

// verify checks a token string and returns what it carries: it must be well
// formed, signed with one of the authority's keys, and not expired at now.
func (a *Authority) verify(s string, now time.Time) (Token, error) {
	kr := a.keys.Load()
	// Look at the string before decoding it: the decoder would skip line
	// breaks, and a changed token must not verify.
	if len(s) < (minTokenBytes*8+5)/6 || len(s) > MaxTokenLen {
		return Token{}, fmt.Errorf("%w: %d bytes long; tokens are %d to %d", ErrTokenInvalid, len(s), (minTokenBytes*8+5)/6, MaxTokenLen)
	}
	for i := 0; i < len(s); i++ {
		if !base64URLByte(s[i]) {
			return Token{}, fmt.Errorf("%w: byte %d is %q, which base64url does not use", ErrTokenInvalid, i, s[i])
		}
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return Token{}, fmt.Errorf("%w: not base64url: %v", ErrTokenInvalid, err)
	}
	if raw[0] != tokenVersion {
		return Token{}, fmt.Errorf("%w: unknown version %d", ErrTokenInvalid, raw[0])
	}
	body, mac := raw[:len(raw)-tokenMACLen], raw[len(raw)-tokenMACLen:]
	var buf [tokenMACLen]byte
	signed := false
	for _, k := range kr.keys {
		// hmac.Equal takes the same time wherever the MACs differ.
		if k.id == body[1] && hmac.Equal(k.sign(buf[:0], body), mac) {
			signed = true
			break
		}
	}
	if !signed {
		return Token{}, fmt.Errorf("%w: not signed by any of the authority's keys", ErrTokenInvalid)
	}
	t, err := decodeToken(body)
	if err != nil {
		return Token{}, err
	}
	if !now.Before(t.Expires) {
		return Token{}, expiredError(t.ID, t.Expires)
	}
	if life := t.Expires.Sub(now); life > a.maxLifetime {
		return Token{}, fmt.Errorf("%w: expires %v from now, beyond the maximum token lifetime of %v", ErrTokenInvalid, life, a.maxLifetime)
	}
	return t, nil
}
