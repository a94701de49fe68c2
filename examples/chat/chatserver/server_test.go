package chatserver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringbus/topics/access"
	"github.com/ringbus/topics/examples/chat/chattest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// streamTimeout bounds every read of an event stream in these tests: a
// stream that stays silent that long has failed the test.
const streamTimeout = 15 * time.Second

// logRecorder collects the server's log lines (see chattest.LogRecorder).
type logRecorder = chattest.LogRecorder

// testConfig is defaultConfig with no rate limit, logging to rec.
func testConfig(rec *logRecorder) Config {
	cfg := DefaultConfig()
	cfg.PublishRate = math.Inf(1)
	cfg.Logf = rec.Logf
	return cfg
}

type testServer struct {
	*Server
	t      *testing.T
	URL    string
	client *http.Client
	log    *logRecorder
}

// newTestServer serves the chat on an httptest server; edit adjusts
// testConfig.
func newTestServer(t *testing.T, edit func(*Config)) *testServer {
	t.Helper()
	rec := &logRecorder{}
	cfg := testConfig(rec)
	if edit != nil {
		edit(&cfg)
	}
	srv, h, err := New(cfg)
	require.NoError(t, err)
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	t.Cleanup(srv.Close) // runs first: ends the streams that hs.Close waits for
	return &testServer{Server: srv, t: t, URL: hs.URL, client: hs.Client(), log: rec}
}

// do makes a request and returns the response, with its body read.
func (ts *testServer) do(method, path string, header http.Header, body string) (*http.Response, string) {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	require.NoError(ts.t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := ts.client.Do(req)
	require.NoError(ts.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(ts.t, err)
	return resp, string(b)
}

// token gets a token from the token endpoint.
func (ts *testServer) token(name, room string) string {
	ts.t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name, "room": room})
	resp, b := ts.do("POST", "/api/token", nil, string(body))
	require.Equal(ts.t, http.StatusOK, resp.StatusCode, b)
	var out struct{ Token string }
	require.NoError(ts.t, json.Unmarshal([]byte(b), &out))
	return out.Token
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

func messageBody(text string) string {
	b, _ := json.Marshal(map[string]string{"text": text})
	return string(b)
}

// post publishes text to room and returns the response.
func (ts *testServer) post(token, room, text string) (*http.Response, string) {
	ts.t.Helper()
	return ts.do("POST", "/api/rooms/"+room+"/messages", bearer(token), messageBody(text))
}

// mustPost publishes text to room, which must succeed.
func (ts *testServer) mustPost(token, room, text string) {
	ts.t.Helper()
	resp, b := ts.post(token, room, text)
	require.Equal(ts.t, http.StatusNoContent, resp.StatusCode, b)
}

// An sseEvent is one Server-Sent Event as a browser would dispatch it.
type sseEvent struct {
	name string // "message" when the stream gave none
	id   string
	data string
}

func (e sseEvent) decode(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(e.data), &m), "event %q data %q", e.name, e.data)
	return m
}

// A message is the data of a message event.
type message struct {
	From string
	Text string
	Seq  uint64
}

func (e sseEvent) message(t *testing.T) message {
	t.Helper()
	require.Equal(t, "message", e.name, "event data %s", e.data)
	var m message
	require.NoError(t, json.Unmarshal([]byte(e.data), &m))
	return m
}

// An sseStream reads an event stream the way EventSource does, with a
// deadline on the whole stream.
type sseStream struct {
	t        *testing.T
	resp     *http.Response
	r        *bufio.Reader
	cancel   context.CancelFunc
	retry    string // the last retry: field
	comments int    // comment lines (heartbeats) seen
}

// openStream opens the room's event stream, which must answer 200, and
// reads its ready event. header may carry Last-Event-ID.
func (ts *testServer) openStream(room, token string, header http.Header, query string) (*sseStream, map[string]any) {
	ts.t.Helper()
	s, resp := ts.tryStream(room, token, header, query)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		ts.t.Fatalf("GET events: %s: %s", resp.Status, b)
	}
	require.Equal(ts.t, "text/event-stream", resp.Header.Get("Content-Type"))
	ready := s.next()
	require.Equal(ts.t, "ready", ready.name)
	return s, ready.decode(ts.t)
}

// tryStream requests the room's event stream and returns it, whatever its
// status.
func (ts *testServer) tryStream(room, token string, header http.Header, query string) (*sseStream, *http.Response) {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
	path := ts.URL + "/api/rooms/" + room + "/events?token=" + token + query
	req, err := http.NewRequestWithContext(ctx, "GET", path, nil)
	require.NoError(ts.t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		cancel()
		ts.t.Fatal(err)
	}
	s := &sseStream{t: ts.t, resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel}
	ts.t.Cleanup(s.close)
	return s, resp
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// read returns the next event, counting comments and skipping them.
func (s *sseStream) read() (sseEvent, error) {
	var ev sseEvent
	var data []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return sseEvent{}, err
		}
		line = strings.TrimSuffix(line, "\n")
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			if line != "" {
				s.comments++ // ": …"
				continue
			}
			if data == nil { // a block without data dispatches nothing
				ev = sseEvent{}
				continue
			}
			if ev.name == "" {
				ev.name = "message"
			}
			ev.data = strings.Join(data, "\n")
			return ev, nil
		case "event":
			ev.name = value
		case "id":
			ev.id = value
		case "data":
			data = append(data, value)
		case "retry":
			s.retry = value
		default:
			return sseEvent{}, fmt.Errorf("unknown field in line %q", line)
		}
	}
}

// next returns the next event; the stream must deliver one in time.
func (s *sseStream) next() sseEvent {
	s.t.Helper()
	ev, err := s.read()
	require.NoError(s.t, err, "reading the event stream")
	return ev
}

// expectEnd checks that the server ended the stream.
func (s *sseStream) expectEnd() {
	s.t.Helper()
	ev, err := s.read()
	require.ErrorIs(s.t, err, io.EOF, "want the end of the stream, got event %+v", ev)
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func TestPageIsServed(t *testing.T) {
	ts := newTestServer(t, nil)
	resp, body := ts.do("GET", "/", nil, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Equal(t, "default-src 'self'", resp.Header.Get("Content-Security-Policy"))
	assert.Contains(t, body, `<script src="/static/chat.js" defer></script>`)
	assert.Contains(t, body, `<input id="name"`)

	for path, ctype := range map[string]string{
		"/static/chat.js":  "text/javascript; charset=utf-8",
		"/static/chat.css": "text/css; charset=utf-8",
	} {
		resp, body := ts.do("GET", path, nil, "")
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Equal(t, ctype, resp.Header.Get("Content-Type"), path)
		assert.NotEmpty(t, body, path)
	}
	for _, path := range []string{"/nope", "/static/nope.js", "/api", "/api/rooms/lobby", "/api/rooms/lobby/events/more"} {
		resp, _ := ts.do("GET", path, nil, "")
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
	}
	resp, _ = ts.do("POST", "/", nil, "")
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestTokenEndpoint(t *testing.T) {
	ts := newTestServer(t, nil)
	before := time.Now()
	resp, body := ts.do("POST", "/api/token", nil, `{"name": "  Zoë 🚀 ", "room": "lobby"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	var out struct {
		Token   string
		Expires time.Time
		Name    string
		Room    string
	}
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	assert.Equal(t, "Zoë 🚀", out.Name, "the name is trimmed")
	assert.Equal(t, "lobby", out.Room)
	assert.WithinRange(t, out.Expires, before.Add(ts.cfg.TokenLifetime-time.Second), time.Now().Add(ts.cfg.TokenLifetime))

	// The token names the person and grants the one room, nothing else.
	session, err := ts.auth.Session(out.Token)
	require.NoError(t, err)
	tok := session.Token()
	assert.Equal(t, "Zoë 🚀", tok.ID)
	assert.True(t, tok.Expires.Equal(out.Expires), "token expires %v, endpoint said %v", tok.Expires, out.Expires)
	assert.Equal(t, []access.Permission{{
		Role:  access.PublishSubscribe,
		Cache: access.CacheName("chat"),
		Topic: access.TopicName("room/lobby"),
	}}, tok.Permissions)
}

func TestTokenEndpointRefusesBadInput(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tc := range []struct {
		name, body string
		status     int
		message    string
	}{
		{"no name", `{"name": "", "room": "lobby"}`, 400, "pick a name"},
		{"blank name", `{"name": "   ", "room": "lobby"}`, 400, "pick a name"},
		{"long name", `{"name": "` + strings.Repeat("n", 33) + `", "room": "lobby"}`, 400, "at most 32"},
		{"long name in bytes", `{"name": "` + strings.Repeat("🚀", 17) + `", "room": "lobby"}`, 400, "at most 32"},
		{"unprintable name", `{"name": "ada\u0007", "room": "lobby"}`, 400, "unprintable"},
		{"no room", `{"name": "ada", "room": ""}`, 400, "pick a room"},
		{"room with a slash", `{"name": "ada", "room": "a/b"}`, 400, `A-Z a-z 0-9 . _ -; '/' is not`},
		{"room with a colon", `{"name": "ada", "room": "a:b"}`, 400, `A-Z a-z 0-9 . _ -; ':' is not`},
		{"room with a space", `{"name": "ada", "room": "a b"}`, 400, `A-Z a-z 0-9 . _ -; ' ' is not`},
		{"wildcard room", `{"name": "ada", "room": "*"}`, 400, `'*' is not`},
		{"non-ASCII room", `{"name": "ada", "room": "café"}`, 400, `'é' is not`},
		{"dot room", `{"name": "ada", "room": "."}`, 400, "A-Z a-z 0-9 . _ -"},
		{"dot-dot room", `{"name": "ada", "room": ".."}`, 400, "A-Z a-z 0-9 . _ -"},
		{"long room", `{"name": "ada", "room": "` + strings.Repeat("r", 65) + `"}`, 400, "1 to 64 characters"},
		{"not JSON", `name=ada&room=lobby`, 400, "JSON"},
		{"empty body", ``, 400, "JSON"},
		{"unknown field", `{"name": "ada", "room": "lobby", "admin": true}`, 400, "unknown field"},
		{"two objects", `{"name": "ada", "room": "lobby"} {}`, 400, "more than one"},
		{"wrong type", `{"name": 7, "room": "lobby"}`, 400, "JSON"},
		{"huge body", `{"name": "` + strings.Repeat("n", 2000) + `", "room": "lobby"}`, 413, "over 1024 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.do("POST", "/api/token", nil, tc.body)
			assert.Equal(t, tc.status, resp.StatusCode, body)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var out struct{ Error string }
			require.NoError(t, json.Unmarshal([]byte(body), &out), body)
			assert.Contains(t, out.Error, tc.message)
		})
	}
	resp, _ := ts.do("GET", "/api/token", nil, "")
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "POST", resp.Header.Get("Allow"))
}

func TestPublishAndStream(t *testing.T) {
	ts := newTestServer(t, nil)
	ada, bob := ts.token("ada", "lobby"), ts.token("bob", "lobby")
	bobs, ready := ts.openStream("lobby", bob, nil, "")
	assert.Equal(t, "bob", ready["name"])
	assert.Equal(t, "lobby", ready["room"])
	assert.Equal(t, false, ready["resumed"])
	assert.NotEmpty(t, ready["expires"])
	assert.Equal(t, "1000", bobs.retry, "the page is told to reconnect after 1 s")
	adas, _ := ts.openStream("lobby", ada, nil, "")
	// Someone in another room hears nothing of this one.
	carols, _ := ts.openStream("attic", ts.token("carol", "attic"), nil, "")

	ts.mustPost(ada, "lobby", "hello, bob")
	ts.mustPost(bob, "lobby", "  two\nlines  ")
	ts.mustPost(ts.token("carol", "attic"), "attic", "anyone?")

	var page string
	for _, s := range []*sseStream{bobs, adas} {
		first := s.next()
		assert.Equal(t, message{From: "ada", Text: "hello, bob", Seq: 1}, first.message(t))
		p, seq, ok := strings.Cut(first.id, ":")
		require.True(t, ok, "id %q", first.id)
		assert.Equal(t, "1", seq)
		if page == "" {
			page = p
		}
		assert.Equal(t, page, p, "both see the same page")

		second := s.next()
		assert.Equal(t, message{From: "bob", Text: "two\nlines", Seq: 2}, second.message(t), "trimmed, and line breaks survive")
		assert.Equal(t, page+":2", second.id)
	}
	assert.Equal(t, message{From: "carol", Text: "anyone?", Seq: 1}, carols.next().message(t))
	assert.True(t, ts.log.Has(`stream "bob" in "lobby": opened`), ts.log)
}

func TestResumeWithLastEventID(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.History = 8 })
	ada := ts.token("ada", "lobby")
	s, _ := ts.openStream("lobby", ada, nil, "")
	var ids []string // ids[i] is message i+1's
	for i := 1; i <= 3; i++ {
		ts.mustPost(ada, "lobby", fmt.Sprint("m", i))
		ev := s.next()
		assert.Equal(t, fmt.Sprint("m", i), ev.message(t).Text)
		ids = append(ids, ev.id)
	}
	s.close() // the connection drops
	ts.mustPost(ada, "lobby", "m4")
	ts.mustPost(ada, "lobby", "m5")

	// EventSource reconnects with the last id it received.
	s, ready := ts.openStream("lobby", ada, http.Header{"Last-Event-ID": {ids[2]}}, "")
	assert.Equal(t, true, ready["resumed"])
	for i := 4; i <= 5; i++ {
		ev := s.next()
		assert.Equal(t, message{From: "ada", Text: fmt.Sprint("m", i), Seq: uint64(i)}, ev.message(t), "no missed event: nothing was lost")
		ids = append(ids, ev.id)
	}
	s.close()
	assert.True(t, ts.log.Has(`stream "ada" in "lobby": resumed after `+ids[2]), ts.log)

	// A new EventSource (after a token renewal) passes it as ?last=.
	s, _ = ts.openStream("lobby", ada, nil, "&last="+ids[0])
	for i := 2; i <= 5; i++ {
		assert.Equal(t, fmt.Sprint("m", i), s.next().message(t).Text)
	}
	s.close()

	// Last-Event-ID, set by the browser on reconnecting, wins over ?last=.
	s, _ = ts.openStream("lobby", ada, http.Header{"Last-Event-ID": {ids[3]}}, "&last="+ids[0])
	assert.Equal(t, "m5", s.next().message(t).Text)
	s.close()

	// Away too long: the room keeps 8 messages, so m6 and m7 are gone.
	for i := 6; i <= 15; i++ {
		ts.mustPost(ada, "lobby", fmt.Sprint("m", i))
	}
	s, _ = ts.openStream("lobby", ada, http.Header{"Last-Event-ID": {ids[4]}}, "")
	missed := s.next()
	require.Equal(t, "missed", missed.name)
	assert.Equal(t, map[string]any{"count": 2.0, "restarted": false}, missed.decode(t))
	for i := 8; i <= 15; i++ {
		assert.Equal(t, fmt.Sprint("m", i), s.next().message(t).Text)
	}
	s.close()

	// An id from an earlier page (the room was re-created, or the server
	// restarted): the page is told, and gets what the room holds.
	page, _, _ := strings.Cut(ids[0], ":")
	p, err := strconv.ParseUint(page, 10, 64)
	require.NoError(t, err)
	s, _ = ts.openStream("lobby", ada, http.Header{"Last-Event-ID": {fmt.Sprintf("%d:3", p-1)}}, "")
	missed = s.next()
	require.Equal(t, "missed", missed.name)
	assert.Equal(t, map[string]any{"count": 7.0, "restarted": true}, missed.decode(t), "m1 to m7 of this page are gone")
	assert.Equal(t, "m8", s.next().message(t).Text)
}

func TestTokenExpiryEndsTheStream(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.TokenLifetime = 2 * time.Second })
	ada := ts.token("ada", "lobby")
	s, _ := ts.openStream("lobby", ada, nil, "")

	// No sleeping: the stream itself says when the token has expired.
	ev := s.next()
	require.Equal(t, "expired", ev.name, "data %s", ev.data)
	assert.Contains(t, ev.decode(t), "expires")
	s.expectEnd()
	assert.True(t, ts.log.Has(`stream "ada" in "lobby": token expired`), ts.log)

	// The expired token opens nothing more.
	resp, body := ts.post(ada, "lobby", "still there?")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, body, "token expired")
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
	_, resp = ts.tryStream("lobby", ada, nil, "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// What the page does next: a new token, and on it goes.
	ada = ts.token("ada", "lobby")
	ts.mustPost(ada, "lobby", "back")
}

func TestErrorStatuses(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.MaxMessage = 100
		c.PublishRate, c.PublishBurst = 0.01, 2 // two at once, then one every 100 s
	})
	ada := ts.token("ada", "lobby")
	forged := []byte(ada)
	forged[len(forged)/2] ^= 1 // still base64url, no longer signed
	other := newTestServer(t, nil).token("ada", "lobby")

	for _, tc := range []struct {
		name         string
		method, path string
		header       http.Header
		body         string
		status       int
		message      string
	}{
		{"publish without a token", "POST", "/api/rooms/lobby/messages", nil, messageBody("hi"), 401, "Authorization: Bearer"},
		{"publish with basic auth", "POST", "/api/rooms/lobby/messages", http.Header{"Authorization": {"Basic YWRhOg=="}}, messageBody("hi"), 401, "Bearer"},
		{"publish with a forged token", "POST", "/api/rooms/lobby/messages", bearer(string(forged)), messageBody("hi"), 401, "access: invalid token"},
		{"publish with a cut token", "POST", "/api/rooms/lobby/messages", bearer(ada[:20]), messageBody("hi"), 401, "access: invalid token"},
		{"publish with another server's token", "POST", "/api/rooms/lobby/messages", bearer(other), messageBody("hi"), 401, "not signed"},
		{"publish to another room", "POST", "/api/rooms/attic/messages", bearer(ada), messageBody("hi"), 403, "permission denied"},
		{"publish to a bad room name", "POST", "/api/rooms/bad*room/messages", bearer(ada), messageBody("hi"), 400, "topics: invalid name"},
		{"oversized message", "POST", "/api/rooms/lobby/messages", bearer(ada), messageBody(strings.Repeat("x", 101)), 400, "value too large"},
		{"empty message", "POST", "/api/rooms/lobby/messages", bearer(ada), messageBody(" \n "), 400, "empty"},
		{"message not JSON", "POST", "/api/rooms/lobby/messages", bearer(ada), "hi", 400, "JSON"},
		{"message of the wrong type", "POST", "/api/rooms/lobby/messages", bearer(ada), `{"text": 5}`, 400, "JSON"},
		{"message body too large", "POST", "/api/rooms/lobby/messages", bearer(ada), messageBody(strings.Repeat("x", 2000)), 413, "over"},
		{"stream without a token", "GET", "/api/rooms/lobby/events", nil, "", 401, "access: invalid token"},
		{"stream with a forged token", "GET", "/api/rooms/lobby/events?token=" + string(forged), nil, "", 401, "access: invalid token"},
		{"stream of another room", "GET", "/api/rooms/attic/events?token=" + ada, nil, "", 403, "permission denied"},
		{"stream with a bad room name", "GET", "/api/rooms/bad*room/events?token=" + ada, nil, "", 400, "topics: invalid name"},
		{"stream with a bad Last-Event-ID", "GET", "/api/rooms/lobby/events?token=" + ada, http.Header{"Last-Event-ID": {"12"}}, "", 400, "<page>:<sequence>"},
		{"stream with a bad last", "GET", "/api/rooms/lobby/events?last=1:x&token=" + ada, nil, "", 400, "<page>:<sequence>"},
		{"stream with an empty last", "GET", "/api/rooms/lobby/events?last=&token=" + ada, nil, "", 400, "<page>:<sequence>"},
		{"stream with the last sequence there is", "GET", "/api/rooms/lobby/events?token=" + ada, http.Header{"Last-Event-ID": {"1:18446744073709551615"}}, "", 400, "<page>:<sequence>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.do(tc.method, tc.path, tc.header, tc.body)
			assert.Equal(t, tc.status, resp.StatusCode, body)
			var out struct{ Error string }
			require.NoError(t, json.Unmarshal([]byte(body), &out), body)
			assert.Contains(t, out.Error, tc.message)
			if tc.status == 401 {
				assert.NotEmpty(t, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}

	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/rooms/lobby/messages"},
		{"PUT", "/api/rooms/lobby/messages"},
		{"POST", "/api/rooms/lobby/events"},
		{"DELETE", "/api/token"},
	} {
		resp, _ := ts.do(tc.method, tc.path, bearer(ada), "")
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s %s", tc.method, tc.path)
	}

	t.Run("rate limit", func(t *testing.T) {
		ts.mustPost(ada, "lobby", "one")
		ts.mustPost(ada, "lobby", "two")
		resp, body := ts.post(ada, "lobby", "three")
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)
		retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		require.NoError(t, err, "Retry-After %q", resp.Header.Get("Retry-After"))
		assert.True(t, retry >= 1 && retry <= 100, "Retry-After %d", retry)
		assert.Contains(t, body, "PublishRate")
		// Each room has its own limit.
		bob := ts.token("bob", "attic")
		ts.mustPost(bob, "attic", "one")
	})
}

func TestClosedServerAnswers503(t *testing.T) {
	ts := newTestServer(t, nil)
	ada := ts.token("ada", "lobby")
	ts.Close()
	resp, body := ts.post(ada, "lobby", "hi")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
	_, resp = ts.tryStream("lobby", ada, nil, "")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

func TestHeartbeat(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Heartbeat = 10 * time.Millisecond })
	ada := ts.token("ada", "lobby")
	s, _ := ts.openStream("lobby", ada, nil, "")
	// Read until a heartbeat (a comment line) has come in, then check the
	// stream still carries messages.
	for s.comments < 2 {
		line, err := s.r.ReadString('\n')
		require.NoError(t, err)
		if strings.HasPrefix(line, ":") {
			s.comments++
		} else {
			require.Equal(t, "\n", line, "only heartbeats while the room is quiet")
		}
	}
	ts.mustPost(ada, "lobby", "still here")
	assert.Equal(t, "still here", s.next().message(t).Text)
}

// A browser that stops reading is dropped once a write to it has blocked for
// WriteTimeout; the room and its other browsers carry on.
func TestSlowBrowserIsDropped(t *testing.T) {
	const size = 512 << 10
	ts := newTestServer(t, func(c *Config) {
		c.MaxMessage = size
		c.History = 32 // 32 × 512 KiB: far more than the socket buffers hold
		// Long enough for the fast browser below to read 512 KiB on a
		// busy machine; the slow one takes that long to be dropped.
		c.WriteTimeout = 2 * time.Second
	})
	ada := ts.token("ada", "lobby")

	// The slow browser: asks for the stream, reads up to its ready event,
	// and then reads nothing, with a small receive buffer.
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.(*net.TCPConn).SetReadBuffer(4096))
	fmt.Fprintf(conn, "GET /api/rooms/lobby/events?token=%s HTTP/1.1\r\nHost: chat\r\n\r\n", ts.token("slow", "lobby"))
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(streamTimeout)))
	slow := bufio.NewReader(conn)
	for {
		line, err := slow.ReadString('\n')
		require.NoError(t, err)
		if line == "event: ready\n" {
			break
		}
	}

	// A browser that keeps up, read by a goroutine that never stops reading.
	fast, _ := ts.openStream("lobby", ts.token("fast", "lobby"), nil, "")
	var big atomic.Int64 // big messages received
	sawAfter := make(chan struct{})
	done := make(chan struct{})
	var readErr error // set before done is closed
	go func() {
		defer close(done)
		for {
			ev, err := fast.read()
			if err != nil {
				readErr = err
				return
			}
			switch {
			case ev.name != "message":
			case len(ev.data) > size:
				big.Add(1)
			case strings.Contains(ev.data, `"text":"after"`):
				close(sawAfter) // and read on until the stream is closed
			}
		}
	}()
	defer func() { fast.close(); <-done }()

	session, err := ts.auth.Session(ada)
	require.NoError(t, err)
	text := strings.Repeat("x", size)
	for range 32 {
		require.NoError(t, session.PublishString(context.Background(), "chat", "room/lobby", text))
	}
	eventually(t, streamTimeout, "the slow browser to be dropped", func() bool { return ts.streams.Load() == 1 })
	assert.True(t, ts.log.Has(`stream "slow" in "lobby": dropped`), ts.log)

	// The room goes on, and the browser that kept up is still there.
	ts.mustPost(ada, "lobby", "after")
	select {
	case <-sawAfter:
	case <-done:
		t.Fatalf("the fast browser's stream ended: %v; log:\n%s", readErr, ts.log)
	case <-time.After(streamTimeout):
		t.Fatal("the fast browser did not get the message sent after the drop")
	}
	assert.Equal(t, int64(1), ts.streams.Load(), "the fast browser is still connected")
	assert.Greater(t, big.Load(), int64(0))
}

func TestShutdownEndsStreams(t *testing.T) {
	rec := &logRecorder{}
	srv, h, err := New(testConfig(rec))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, srv, h, ln) }()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	ts := &testServer{Server: srv, t: t, URL: "http://" + ln.Addr().String(), client: client, log: rec}
	s, _ := ts.openStream("lobby", ts.token("ada", "lobby"), nil, "")

	cancel() // SIGINT
	ev := s.next()
	assert.Equal(t, "closing", ev.name)
	s.expectEnd()
	select {
	case err := <-served:
		assert.NoError(t, err)
	case <-time.After(streamTimeout):
		t.Fatal("serve did not return")
	}
	_, err = client.Get(ts.URL + "/")
	assert.Error(t, err, "the listener is closed")
	assert.True(t, rec.Has("shutting down"), rec)
}

func TestNewServerRefusesBadConfig(t *testing.T) {
	for name, edit := range map[string]func(*Config){
		"lifetime":      func(c *Config) { c.TokenLifetime = 0 },
		"write timeout": func(c *Config) { c.WriteTimeout = -1 },
		"history":       func(c *Config) { c.History = 3 },
		"rate":          func(c *Config) { c.PublishRate = 0 },
		"burst":         func(c *Config) { c.PublishBurst = 0 },
		"max message":   func(c *Config) { c.MaxMessage = 0 },
	} {
		cfg := DefaultConfig()
		edit(&cfg)
		_, _, err := New(cfg)
		assert.Error(t, err, name)
	}
	cfg := DefaultConfig()
	cfg.Keys = [][]byte{[]byte("short")}
	_, _, err := New(cfg)
	assert.Error(t, err, "a key shorter than access.MinKeyLen")
}

// Servers given the same keys take each other's tokens: a browser can move
// from one to another.
func TestSharedKeys(t *testing.T) {
	key := []byte(strings.Repeat("k", access.MinKeyLen))
	a := newTestServer(t, func(c *Config) { c.Keys = [][]byte{key} })
	b := newTestServer(t, func(c *Config) { c.Keys = [][]byte{key} })
	other := newTestServer(t, nil)
	token := a.token("ada", "lobby")
	resp, _ := b.post(token, "lobby", "hello")
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp, _ = other.post(token, "lobby", "hello")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a server with its own key refuses it")
}

func TestPageURL(t *testing.T) {
	assert.Equal(t, "http://127.0.0.1:8080/", PageURL(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}))
	assert.Equal(t, "http://localhost:8080/", PageURL(&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}))
	assert.Equal(t, "http://[::1]:80/", PageURL(&net.TCPAddr{IP: net.IPv6loopback, Port: 80}))
}

func TestParseEventID(t *testing.T) {
	id, err := parseEventID("1795768581240052438:42")
	require.NoError(t, err)
	assert.Equal(t, eventID{1795768581240052438, 42}, id)
	assert.Equal(t, "1795768581240052438:42", id.String())
	for _, bad := range []string{"", ":", "1", "1:", ":1", "a:1", "1:a", "-1:1", "1:1:1", " 1:1", "1:18446744073709551615", "18446744073709551616:1"} {
		_, err := parseEventID(bad)
		assert.Error(t, err, "%q", bad)
	}
}
