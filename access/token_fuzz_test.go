package access_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics/access"
)

// The token fuzz targets run each input in a synctest bubble, whose clock
// starts at the same instant every time: tokens minted there are the same in
// every run, so the seed corpora in testdata/fuzz hold valid tokens that stay
// valid. Regenerate them after a change of the token format with
//
//	go test -run TestTokenFuzzSeeds -update-token-seeds
var updateSeeds = flag.Bool("update-token-seeds", false, "rewrite the token fuzz seed corpora in testdata/fuzz")

// seedTokens mints the tokens the fuzz targets start from. It must run in a
// bubble.
func seedTokens(t testing.TB, e *authEngine) []string {
	t.Helper()
	var perms []access.Permission
	for i := range access.MaxPermissions {
		perms = append(perms, access.Permission{Role: access.Role(i%3 + 1), Cache: access.CacheName(fmt.Sprint("c", i)), Topic: access.TopicName(fmt.Sprint("t/", i))})
	}
	return []string{
		mint(t, e, grant("ada", time.Minute, chatRooms)),
		mint(t, e, grant("", time.Minute, access.Permission{Role: access.SubscribeOnly, Cache: access.AllCaches(), Topic: access.AllTopics()})),
		mint(t, e, grant("Ada Lovelace 🚂", 30*time.Minute,
			access.Permission{Role: access.PublishOnly, Cache: access.CacheName("chat"), Topic: access.TopicName("room/lobby")},
			access.Permission{Role: access.PublishSubscribe, Cache: access.AllCaches(), Topic: access.TopicPrefix("a")})),
		mint(t, e, grant(strings.Repeat("x", access.MaxIDLen), time.Hour, perms...)),
	}
}

// inBubble runs f in a synctest bubble with an engine signing with key1.
func inBubble(t *testing.T, f func(t *testing.T, e *authEngine)) {
	synctest.Test(t, func(t *testing.T) {
		f(t, withAuth(t, access.WithKeys(key1)))
	})
}

// TestTokenFuzzSeeds checks that the valid seeds in the corpora are still
// what Mint makes (or rewrites them with -update-token-seeds).
func TestTokenFuzzSeeds(t *testing.T) {
	var tokens []string
	inBubble(t, func(t *testing.T, e *authEngine) {
		tokens = seedTokens(t, e)
		for _, tok := range tokens {
			newSession(t, e, tok)
		}
	})
	for i, tok := range tokens {
		files := map[string]string{
			filepath.Join("testdata", "fuzz", "FuzzTokenParse", fmt.Sprintf("valid-%d", i)): fmt.Sprintf("go test fuzz v1\nstring(%q)\n", tok),
			filepath.Join("testdata", "fuzz", "FuzzTokenBody", fmt.Sprintf("valid-%d", i)):  fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", body(t, tok)),
		}
		for path, want := range files {
			if *updateSeeds {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
				continue
			}
			got, err := os.ReadFile(path)
			require.NoError(t, err, "run go test -run TestTokenFuzzSeeds -update-token-seeds")
			assert.Equal(t, want, string(got), "%s is stale: run go test -run TestTokenFuzzSeeds -update-token-seeds", path)
		}
	}
}

// requireCanonical presents s to e: it must be refused with ErrTokenInvalid or
// ErrTokenExpired, or accepted, and then be byte for byte what Mint
// makes of what it carries (the format has one encoding per token).
func requireCanonical(t *testing.T, e *authEngine, s string) {
	sess, err := e.Session(s)
	if err != nil {
		require.True(t, errors.Is(err, access.ErrTokenInvalid) || errors.Is(err, access.ErrTokenExpired), "unexpected error %v", err)
		require.Nil(t, sess)
		return
	}
	again, err := e.Mint(sess.Token())
	require.NoError(t, err, "re-minting an accepted token")
	require.Equal(t, s, again, "an accepted token is what Mint makes")
}

// FuzzTokenParse presents arbitrary strings as tokens.
func FuzzTokenParse(f *testing.F) {
	for _, s := range []string{"", "A", "AQ", "AQID", strings.Repeat("A", 100), "a.b.c", "Bearer x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		inBubble(t, func(t *testing.T, e *authEngine) { requireCanonical(t, e, s) })
	})
}

// FuzzTokenBody signs arbitrary bytes with the engine's key, so that the
// fuzzer gets past the signature and exercises the parser of what is
// signed: it must never panic, and accept only what Mint makes.
func FuzzTokenBody(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		inBubble(t, func(t *testing.T, e *authEngine) { requireCanonical(t, e, signed(key1, b)) })
	})
}

// FuzzTokenTamper changes a valid token (replaces the bytes from pos to
// pos+del with insert): a token that is not byte for byte the original must
// not verify.
func FuzzTokenTamper(f *testing.F) {
	f.Add(uint8(0), uint16(0), uint8(0), "")    // unchanged
	f.Add(uint8(0), uint16(10), uint8(1), "B")  // one character replaced
	f.Add(uint8(1), uint16(0), uint8(0), "A")   // one prepended
	f.Add(uint8(2), uint16(999), uint8(0), "A") // one appended
	f.Add(uint8(3), uint16(40), uint8(0), "\n") // a line break inserted
	f.Add(uint8(0), uint16(5), uint8(3), "")    // three deleted
	f.Add(uint8(1), uint16(78), uint8(1), "")   // the last one deleted
	f.Fuzz(func(t *testing.T, which uint8, pos uint16, del uint8, insert string) {
		inBubble(t, func(t *testing.T, e *authEngine) {
			tokens := seedTokens(t, e)
			tok := tokens[int(which)%len(tokens)]
			p := min(int(pos), len(tok))
			d := min(int(del), len(tok)-p)
			changed := tok[:p] + insert + tok[p+d:]
			sess, err := e.Session(changed)
			if changed == tok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, access.ErrTokenInvalid, "token %q changed to %q", tok, changed)
			require.Nil(t, sess)
		})
	})
}
