package access

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ringbus/topics"
)

// Role says what a Permission lets its holder do with the topics it selects.
type Role uint8

const (
	// PublishOnly allows publishing (Session.Publish, Session.PublishString).
	PublishOnly Role = 1
	// SubscribeOnly allows subscribing (Session.Subscribe).
	SubscribeOnly Role = 2
	// PublishSubscribe allows both.
	PublishSubscribe = PublishOnly | SubscribeOnly
)

func (r Role) String() string {
	switch r {
	case PublishOnly:
		return "PublishOnly"
	case SubscribeOnly:
		return "SubscribeOnly"
	case PublishSubscribe:
		return "PublishSubscribe"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// A CacheSelector says which caches a Permission applies to: AllCaches() or
// CacheName(name). Its zero value selects nothing and is refused by
// Mint, so a permission whose cache was forgotten grants nothing.
// Selectors are small values, comparable with ==.
type CacheSelector struct {
	name string
	all  bool
}

// AllCaches selects every cache of the engine, including caches created
// after the token was minted.
func AllCaches() CacheSelector { return CacheSelector{all: true} }

// CacheName selects the cache with that name. Mint refuses a name that
// breaks the naming rules with ErrInvalidName.
func CacheName(name string) CacheSelector { return CacheSelector{name: name} }

func (s CacheSelector) String() string {
	switch {
	case s.all:
		return "all caches"
	case s.name == "":
		return "no cache"
	}
	return "cache " + quote(s.name)
}

func (s CacheSelector) matches(cache string) bool { return s.all || s.name != "" && s.name == cache }

// A TopicSelector says which topics of the selected caches a Permission
// applies to: AllTopics(), TopicName(name) or TopicPrefix(prefix). Its zero
// value selects nothing and is refused by Mint. Selectors are small
// values, comparable with ==.
//
// The selectors are values rather than patterns in a string, so that a name
// that comes from a client can never widen a grant: TopicName("room/" +
// userInput) is refused if the input holds a character that is not allowed
// in topic names, and never becomes a prefix or a wildcard.
type TopicSelector struct {
	kind topicKind
	s    string
}

type topicKind uint8

const (
	noTopic     topicKind = iota // the zero TopicSelector
	allTopics                    // AllTopics
	oneTopic                     // TopicName
	topicPrefix                  // TopicPrefix
)

// AllTopics selects every topic.
func AllTopics() TopicSelector { return TopicSelector{kind: allTopics} }

// TopicName selects the topic with that name. Mint refuses a name that
// breaks the naming rules with ErrInvalidName.
func TopicName(name string) TopicSelector { return TopicSelector{kind: oneTopic, s: name} }

// TopicPrefix selects every topic whose name starts with prefix, such as
// "room/" for "room/lobby" and "room/42". The prefix must be 1–255 bytes
// that may appear in topic names; Mint refuses others with
// ErrInvalidName (an empty prefix too: use AllTopics to mean all topics).
func TopicPrefix(prefix string) TopicSelector { return TopicSelector{kind: topicPrefix, s: prefix} }

func (s TopicSelector) String() string {
	switch s.kind {
	case allTopics:
		return "all topics"
	case oneTopic:
		return "topic " + quote(s.s)
	case topicPrefix:
		return "topics prefixed " + quote(s.s)
	}
	return "no topic"
}

func (s TopicSelector) matches(topic string) bool {
	switch s.kind {
	case allTopics:
		return true
	case oneTopic:
		return topic == s.s
	case topicPrefix:
		return strings.HasPrefix(topic, s.s)
	}
	return false
}

// A Permission grants a Role on the topics a TopicSelector picks in the
// caches a CacheSelector picks:
//
//	topics.Permission{Role: topics.PublishSubscribe, Cache: topics.CacheName("chat"), Topic: topics.TopicPrefix("room/")}
//
// Every field must be set: Mint refuses a zero Role or a zero selector.
type Permission struct {
	Role  Role
	Cache CacheSelector
	Topic TopicSelector
}

func (p Permission) String() string {
	return fmt.Sprintf("%v on %v of %v", p.Role, p.Topic, p.Cache)
}

// allows reports whether p grants role (one of PublishOnly, SubscribeOnly)
// on the topic of the cache.
func (p Permission) allows(role Role, cache, topic string) bool {
	return p.Role&role != 0 && p.Cache.matches(cache) && p.Topic.matches(topic)
}

// A Token is what a token string carries: who holds it, until when, and
// what it grants. Authority.Mint turns a Token into a signed token string;
// Authority.Session verifies a token string and Session.Token returns the Token
// it carries.
type Token struct {
	// ID names the holder, for example a user ID. It is optional, at most
	// MaxIDLen bytes of printable UTF-8 (unicode.IsPrint; no control
	// characters, no spaces other than ' '). What a Session publishes
	// carries it in Item.Publisher, and nobody can publish under an ID
	// without a token that carries it.
	ID string
	// Expires is when the token stops being valid. It is required: a token
	// lives at most the authority's maximum lifetime (WithMaxLifetime,
	// DefaultMaxTokenLifetime) from the moment it is minted. Tokens keep it
	// to the millisecond; Mint rounds it down.
	Expires time.Time
	// Permissions are what the token grants: 1 to MaxPermissions of
	// them. A request is allowed if any permission allows it.
	Permissions []Permission
}

// allows reports whether any of t's permissions grants role on the topic.
func (t *Token) allows(role Role, cache, topic string) bool {
	for _, p := range t.Permissions {
		if p.allows(role, cache, topic) {
			return true
		}
	}
	return false
}

// The token format, version 1. A token string is the base64url encoding,
// without padding, of these bytes:
//
//	version     1 byte, tokenVersion
//	key ID      1 byte, the tokenKey.id of the signing key
//	expires     8 bytes, big-endian: Unix time in milliseconds
//	ID          1 byte n (0–MaxIDLen), then n bytes
//	count       1 byte (1–MaxPermissions), then count permissions:
//	  flags     1 byte: bits 0–1 the Role (1–3); bit 2 set if one cache is
//	            named; bits 3–4 the topic selector (0 all, 1 one topic,
//	            2 prefix); bits 5–7 zero
//	  cache     if named: 1 byte n (1–255), then n bytes
//	  topic     unless all: 1 byte n (1–255), then n bytes
//	MAC         32 bytes: HMAC-SHA256 under the key, of all the bytes above
//
// Every Token has exactly one encoding and the parser accepts nothing else:
// every length and flag is checked, names must follow the naming rules, and
// no byte may follow the last permission. So a token string that verifies
// is byte for byte the one Mint made.
//
// The string is checked before it is decoded (length, alphabet: the base64
// decoder would skip line breaks), the MAC before anything it covers is
// parsed, and the expiry last, so that only an authentic token is ever told
// that it expired.
//
// Designs not taken: JWT, which needs a JSON codec, carries its algorithm
// in the token (the source of "alg: none" and key-confusion attacks) and
// spells its claims out as base64-encoded JSON, larger for the same grant;
// a MAC truncated to 16 bytes, which would save 22 characters per token for
// a margin nobody needs to shave; and tokens that name their key by its
// position in the key list, which would break on every rotation.
const (
	tokenVersion   = 1
	tokenMACLen    = sha256.Size
	tokenHeaderLen = 1 + 1 + 8 // version, key ID, expires
	maxTokenBytes  = tokenHeaderLen + 1 + MaxIDLen + 1 +
		MaxPermissions*(1+1+topics.MaxNameLen+1+topics.MaxNameLen) + tokenMACLen
	minTokenBytes = tokenHeaderLen + 1 + 1 + 1 + tokenMACLen // no ID, one permission on all topics of all caches

	flagRole      = 0b11
	flagCacheName = 1 << 2
	flagTopicKind = 0b11 << 3
	topicShift    = 3
	flagsUsed     = flagRole | flagCacheName | flagTopicKind
)

// encodeToken returns the signed bytes of a token that checkToken accepted.
func encodeToken(t *Token, k tokenKey) []byte {
	b := make([]byte, 0, 64)
	b = append(b, tokenVersion, k.id)
	b = binary.BigEndian.AppendUint64(b, uint64(t.Expires.UnixMilli()))
	b = append(b, byte(len(t.ID)))
	b = append(b, t.ID...)
	b = append(b, byte(len(t.Permissions)))
	for _, p := range t.Permissions {
		kind := p.Topic.kind
		flags := byte(p.Role) | byte(kind-allTopics)<<topicShift
		if !p.Cache.all {
			flags |= flagCacheName
		}
		b = append(b, flags)
		if !p.Cache.all {
			b = append(b, byte(len(p.Cache.name)))
			b = append(b, p.Cache.name...)
		}
		if kind != allTopics {
			b = append(b, byte(len(p.Topic.s)))
			b = append(b, p.Topic.s...)
		}
	}
	return k.sign(b, b)
}

// checkToken checks what Mint is asked to mint, at time now, and rounds
// t.Expires down to the millisecond.
func checkToken(t *Token, now time.Time, maxLifetime time.Duration) error {
	if err := checkTokenID(t.ID); err != nil {
		return err
	}
	if t.Expires.IsZero() {
		return fmt.Errorf("%w: Expires is required", ErrTokenInvalid)
	}
	t.Expires = time.UnixMilli(t.Expires.UnixMilli())
	if !t.Expires.After(now) {
		return fmt.Errorf("%w: Expires %v is not in the future", ErrTokenInvalid, t.Expires)
	}
	if life := t.Expires.Sub(now); life > maxLifetime {
		return fmt.Errorf("%w: Expires is %v away, beyond the maximum token lifetime of %v (WithMaxLifetime)", ErrTokenInvalid, life, maxLifetime)
	}
	if n := len(t.Permissions); n == 0 || n > MaxPermissions {
		return fmt.Errorf("%w: %d permissions; a token carries 1 to %d", ErrTokenInvalid, n, MaxPermissions)
	}
	for i, p := range t.Permissions {
		if p.Role < PublishOnly || p.Role > PublishSubscribe {
			return fmt.Errorf("%w: permission %d: invalid %v: use PublishOnly, SubscribeOnly or PublishSubscribe", ErrTokenInvalid, i, p.Role)
		}
		switch {
		case p.Cache.all:
		case p.Cache.name == "":
			return fmt.Errorf("%w: permission %d selects no cache: use AllCaches() or CacheName(name)", ErrTokenInvalid, i)
		default:
			if err := topics.ValidateCacheName(p.Cache.name); err != nil {
				return fmt.Errorf("permission %d: %w", i, err)
			}
		}
		switch kind := p.Topic.kind; {
		case kind == noTopic:
			return fmt.Errorf("%w: permission %d selects no topic: use AllTopics(), TopicName(name) or TopicPrefix(prefix)", ErrTokenInvalid, i)
		case kind == oneTopic:
			if err := topics.ValidateTopicName(p.Topic.s); err != nil {
				return fmt.Errorf("permission %d: %w", i, err)
			}
		case kind == topicPrefix:
			if err := validatePrefix(p.Topic.s); err != nil {
				return fmt.Errorf("permission %d: %w", i, err)
			}
		}
	}
	return nil
}

func checkTokenID(id string) error {
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: ID %q is %d bytes, longer than %d", ErrTokenInvalid, id[:MaxIDLen]+"…", len(id), MaxIDLen)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("%w: ID %q is not valid UTF-8", ErrTokenInvalid, id)
	}
	for i, r := range id {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: ID %q has the unprintable %U at byte %d", ErrTokenInvalid, id, r, i)
		}
	}
	return nil
}

// quote quotes a name for an error message or a String, shortening names
// so long that they would swamp it.
func quote(name string) string {
	const keep = 2 * topics.MaxNameLen
	if len(name) > keep {
		return fmt.Sprintf("%q…", name[:keep])
	}
	return fmt.Sprintf("%q", name)
}

// validatePrefix checks a TopicPrefix: what may start a topic name.
func validatePrefix(prefix string) error {
	if err := topics.ValidateTopicName(prefix); err != nil {
		return fmt.Errorf("topic prefix: %w", err)
	}
	return nil
}

func base64URLByte(b byte) bool {
	return 'A' <= b && b <= 'Z' || 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-' || b == '_'
}

// expiredError is the error for a token that expired at exp.
func expiredError(id string, exp time.Time) error {
	return fmt.Errorf("%w: token %q expired at %s", ErrTokenExpired, id, exp.UTC().Format(time.RFC3339Nano))
}

// decodeToken parses the signed body of a token (without its MAC). Its
// input is authentic, so a fault here means a bug or a leaked key; it is
// parsed as strictly as if it were not.
func decodeToken(body []byte) (Token, error) {
	d := tokenDecoder{b: body[2:]} // version and key ID are checked
	var t Token
	exp := d.bytes(8)
	if exp != nil {
		ms := binary.BigEndian.Uint64(exp)
		if ms > 1<<62 {
			d.fail("expiry out of range")
		}
		t.Expires = time.UnixMilli(int64(ms))
	}
	t.ID = string(d.lenBytes(0, MaxIDLen, "ID"))
	if d.err == nil {
		if err := checkTokenID(t.ID); err != nil {
			return Token{}, err
		}
	}
	n := int(d.byte())
	if d.err == nil && (n < 1 || n > MaxPermissions) {
		d.fail(fmt.Sprintf("%d permissions", n))
	}
	for i := 0; i < n && d.err == nil; i++ {
		t.Permissions = append(t.Permissions, d.permission())
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d bytes after the last permission", len(d.b)))
	}
	if d.err != nil {
		return Token{}, d.err
	}
	return t, nil
}

// tokenDecoder reads a token's fields; the first fault sticks in err and
// makes every later read return zero.
type tokenDecoder struct {
	b   []byte
	err error
}

func (d *tokenDecoder) fail(why string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: malformed: %s", ErrTokenInvalid, why)
	}
	d.b = nil
}

func (d *tokenDecoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("truncated")
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *tokenDecoder) byte() byte {
	if b := d.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

// lenBytes reads a length byte between lo and hi and that many bytes.
func (d *tokenDecoder) lenBytes(lo, hi int, what string) []byte {
	n := int(d.byte())
	if d.err == nil && (n < lo || n > hi) {
		d.fail(fmt.Sprintf("%s of %d bytes", what, n))
	}
	return d.bytes(n)
}

func (d *tokenDecoder) permission() Permission {
	flags := d.byte()
	if d.err != nil {
		return Permission{}
	}
	p := Permission{Role: Role(flags & flagRole)}
	kind := allTopics + topicKind(flags&flagTopicKind)>>topicShift
	if flags&^flagsUsed != 0 || p.Role == 0 || kind > topicPrefix {
		d.fail(fmt.Sprintf("permission flags %#08b", flags))
		return Permission{}
	}
	if flags&flagCacheName == 0 {
		p.Cache = AllCaches()
	} else {
		name := string(d.lenBytes(1, topics.MaxNameLen, "cache name"))
		if d.err == nil && topics.ValidateCacheName(name) != nil {
			d.fail("invalid cache name")
		}
		p.Cache = CacheName(name)
	}
	switch kind {
	case allTopics:
		p.Topic = AllTopics()
	case oneTopic:
		name := string(d.lenBytes(1, topics.MaxNameLen, "topic name"))
		if d.err == nil && topics.ValidateTopicName(name) != nil {
			d.fail("invalid topic name")
		}
		p.Topic = TopicName(name)
	case topicPrefix:
		prefix := string(d.lenBytes(1, topics.MaxNameLen, "topic prefix"))
		if d.err == nil && validatePrefix(prefix) != nil {
			d.fail("invalid topic prefix")
		}
		p.Topic = TopicPrefix(prefix)
	}
	return p
}
