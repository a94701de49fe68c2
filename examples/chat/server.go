package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/access"
)

//go:embed static
var static embed.FS

// The engine holds one cache, and each room is a topic in it. Tokens grant
// one room: the topic roomPrefix+room.
const (
	cacheName  = "chat"
	roomPrefix = "room/"

	maxNameRunes = 32   // a person's name, in characters
	maxRoomLen   = 64   // a room's name, in bytes
	maxTokenBody = 1024 // bytes of a token request
)

// config is what the flags set. defaultConfig gives the values main uses.
type config struct {
	// TokenLifetime is how long a token lives. Short, so that the page's
	// renewal runs often enough to be seen working.
	TokenLifetime time.Duration
	// PublishRate and PublishBurst limit each room's messages per second
	// (topics.WithPublishRate); a publish over the limit gets 429.
	PublishRate  float64
	PublishBurst int
	// MaxMessage is the longest message, in bytes (topics.WithMaxValueSize).
	MaxMessage int
	// History is how many messages each room keeps for browsers that
	// reconnect (topics.WithRingSize): a power of two.
	History int
	// WriteTimeout is how long one event may take to reach a browser's
	// connection. A browser that does not read for that long is dropped;
	// the room does not wait for it.
	WriteTimeout time.Duration
	// Heartbeat is how often an idle stream gets a comment line, so that a
	// dead connection is found and proxies keep the stream open.
	Heartbeat time.Duration
	// Retry is the reconnection delay the page's EventSource is told to use.
	Retry time.Duration
	// Logf logs what happens to streams; nil logs nothing.
	Logf func(format string, args ...any)
}

func defaultConfig() config {
	return config{
		TokenLifetime: 2 * time.Minute,
		PublishRate:   5,
		PublishBurst:  10,
		MaxMessage:    2000,
		History:       256,
		WriteTimeout:  10 * time.Second,
		Heartbeat:     15 * time.Second,
		Retry:         time.Second,
	}
}

// A server is the chat: an engine with one cache, and the HTTP handlers
// around it. Its handlers are safe for concurrent use.
type server struct {
	cfg    config
	engine *topics.Engine
	auth   *access.Authority
	// streams counts the event streams being served.
	streams atomic.Int64
}

// newServer returns the chat server and its HTTP handler. It signs tokens
// with a random key, so tokens do not survive a restart of the process:
// pages then get a 401, fetch a new token and resume. Close the server with
// close, which ends every event stream.
func newServer(cfg config) (*server, http.Handler, error) {
	switch {
	case cfg.TokenLifetime <= 0:
		return nil, nil, fmt.Errorf("token lifetime %v: must be positive", cfg.TokenLifetime)
	case cfg.WriteTimeout <= 0 || cfg.Heartbeat <= 0 || cfg.Retry <= 0:
		return nil, nil, errors.New("write timeout, heartbeat and retry must be positive")
	}
	key := make([]byte, access.MinKeyLen)
	rand.Read(key) // never fails (crypto/rand)
	engine := topics.New()
	auth, err := access.New(engine, access.WithKeys(key), access.WithMaxLifetime(cfg.TokenLifetime))
	if err != nil {
		return nil, nil, err
	}
	_, err = engine.CreateCache(cacheName,
		topics.WithPublishRate(cfg.PublishRate, cfg.PublishBurst),
		topics.WithMaxValueSize(cfg.MaxMessage),
		topics.WithRingSize(cfg.History),
	)
	if err != nil {
		engine.Close()
		return nil, nil, err
	}
	s := &server{cfg: cfg, engine: engine, auth: auth}

	page, _ := fs.Sub(static, "static") // cannot fail: the directory is embedded
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", http.FileServerFS(page))
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(page)))
	mux.HandleFunc("POST /api/token", s.token)
	mux.HandleFunc("POST /api/rooms/{room}/messages", s.publish)
	mux.HandleFunc("GET /api/rooms/{room}/events", s.events)
	return s, secureHeaders(mux), nil
}

// close closes the engine, which ends every event stream. It is idempotent.
func (s *server) close() { s.engine.Close() }

func (s *server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// secureHeaders keeps the page to its own scripts and styles, so a message
// can never run as code even if the page had a bug that rendered it as HTML.
func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// POST /api/token {"name": "ada", "room": "lobby"}
// → {"token": "…", "expires": "2026-…Z", "name": "ada", "room": "lobby"}
//
// A real server would check who is asking (a login, a cookie) before
// minting; this one lets anyone pick any name.
func (s *server) token(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
		Room string `json:"room"`
	}
	if !decodeJSON(w, r, maxTokenBody, &req) {
		return
	}
	name, room := strings.TrimSpace(req.Name), strings.TrimSpace(req.Room)
	if err := checkName(name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := checkRoom(room); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	expires := time.Now().Add(s.cfg.TokenLifetime)
	token, err := s.auth.Mint(access.Token{
		ID:      name, // every message published with the token carries it
		Expires: expires,
		Permissions: []access.Permission{{
			Role:  access.PublishSubscribe,
			Cache: access.CacheName(cacheName),
			Topic: access.TopicName(roomPrefix + room), // never a prefix: one room only
		}},
	})
	if err != nil {
		writeTopicsError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"token":   token,
		"expires": expires.UTC().Truncate(time.Millisecond),
		"name":    name,
		"room":    room,
	})
}

// checkName accepts 1 to maxNameRunes printable characters, no longer than a
// token ID may be.
func checkName(name string) error {
	switch n := utf8.RuneCountInString(name); {
	case name == "":
		return errors.New("pick a name")
	case n > maxNameRunes || len(name) > access.MaxIDLen:
		return fmt.Errorf("names are at most %d characters", maxNameRunes)
	case !utf8.ValidString(name):
		return errors.New("the name is not valid UTF-8")
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("the name has the unprintable character %U", r)
		}
	}
	return nil
}

// checkRoom accepts 1 to maxRoomLen bytes of A-Z a-z 0-9 . _ -, except "."
// and "..", which browsers would resolve away in the room's URLs. These are
// the engine's naming rules for caches (topic names also allow / and :), so
// "room/"+room is always a valid topic name, and one path segment.
func checkRoom(room string) error {
	rule := fmt.Sprintf("room names are 1 to %d characters of A-Z a-z 0-9 . _ -", maxRoomLen)
	if room == "" {
		return errors.New("pick a room")
	}
	if len(room) > maxRoomLen || room == "." || room == ".." {
		return errors.New(rule)
	}
	for _, c := range room {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%s; %q is not one of them", rule, c)
		}
	}
	return nil
}

// POST /api/rooms/{room}/messages with "Authorization: Bearer <token>" and
// {"text": "…"} → 204 No Content.
func (s *server) publish(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="chat"`)
		writeError(w, http.StatusUnauthorized, "send the token from POST /api/token as Authorization: Bearer <token>")
		return
	}
	session, err := s.auth.Session(token)
	if err != nil {
		writeTopicsError(w, err)
		return
	}
	var msg struct {
		Text string `json:"text"`
	}
	// JSON escapes can make a message up to six times its size (\u0000).
	if !decodeJSON(w, r, int64(6*s.cfg.MaxMessage+1024), &msg) {
		return
	}
	text := strings.TrimSpace(msg.Text)
	if text == "" {
		writeError(w, http.StatusBadRequest, "the message is empty")
		return
	}
	// The session checks the room's name, that the token grants it, the
	// message's size and the room's rate, and stamps the message with the
	// token's ID.
	if err := session.PublishString(r.Context(), cacheName, roomPrefix+r.PathValue("room"), text); err != nil {
		writeTopicsError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// GET /api/rooms/{room}/events?token=<token>[&last=<page>:<seq>] streams
// the room as Server-Sent Events:
//
//	event: ready      data: {"name", "room", "expires", "resumed"}  first, once subscribed
//	(message)         id: <page>:<seq>  data: {"from", "text", "seq"}
//	event: missed     data: {"count", "restarted"}  before a message, if some were lost
//	event: expired    data: {"expires"}  the token expired; the stream ends
//	event: closing    data: {}  the server is shutting down; the stream ends
//
// EventSource cannot set headers, so the token comes in the query. When it
// reconnects by itself it sends the last id it received as Last-Event-ID;
// a page that opens a new EventSource (with a new token) passes it as last.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	session, err := s.auth.Session(r.URL.Query().Get("token"))
	if err != nil {
		writeTopicsError(w, err)
		return
	}
	var opts []topics.SubscribeOption
	var from eventID
	resumed := false
	if last := r.Header.Get("Last-Event-ID"); last != "" || r.URL.Query().Has("last") {
		if last == "" {
			last = r.URL.Query().Get("last")
		}
		if from, err = parseEventID(last); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		opts = append(opts, topics.ResumeAt(from.page, from.seq+1))
		resumed = true
	}
	// The subscription ends when the browser goes (the request's context),
	// at the token's expiry, or when the server closes.
	sub, err := session.Subscribe(r.Context(), cacheName, roomPrefix+r.PathValue("room"), opts...)
	if err != nil {
		writeTopicsError(w, err)
		return
	}
	defer sub.Close()
	s.streams.Add(1)
	defer s.streams.Add(-1)

	tok := session.Token()
	who := fmt.Sprintf("%q in %q", tok.ID, r.PathValue("room"))
	if resumed {
		s.logf("stream %s: resumed after %s", who, from)
	} else {
		s.logf("stream %s: opened", who)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // tell proxies not to buffer the stream
	w.WriteHeader(http.StatusOK)
	out := &eventWriter{w: w, rc: http.NewResponseController(w), timeout: s.cfg.WriteTimeout}

	out.retry(s.cfg.Retry)
	out.event("ready", "", map[string]any{
		"name": tok.ID, "room": r.PathValue("room"), "expires": tok.Expires.UTC(), "resumed": resumed,
	})
	if err := out.flush(); err != nil {
		s.logf("stream %s: dropped: %v", who, err)
		return
	}
	first := true
	for {
		item, err := s.next(r.Context(), sub)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			out.comment("") // heartbeat
		case errors.Is(err, access.ErrTokenExpired):
			out.event("expired", "", map[string]any{"expires": tok.Expires.UTC()})
			s.logf("stream %s: token expired", who)
			out.flush()
			return
		case r.Context().Err() != nil:
			s.logf("stream %s: browser left", who)
			return
		case err != nil: // the engine closed: the server is shutting down
			out.event("closing", "", map[string]any{})
			s.logf("stream %s: closed: %v", who, err)
			out.flush()
			return
		default:
			// A resumed stream whose room was re-created (the server
			// restarted, or the room was idle for long) is on a new page:
			// what was published on the old one after the page's last
			// message is gone, however many it was.
			restarted := first && resumed && item.Page != from.page
			first = false
			if item.Missed > 0 || restarted {
				out.event("missed", "", map[string]any{"count": item.Missed, "restarted": restarted})
			}
			out.event("", eventID{item.Page, item.Sequence}.String(), map[string]any{
				"from": item.Publisher, "text": item.Value.String(), "seq": item.Sequence,
			})
		}
		if err := out.flush(); err != nil {
			// The browser did not take the event in time: drop it, and let
			// it reconnect and resume. Everyone else goes on.
			s.logf("stream %s: dropped: %v", who, err)
			return
		}
	}
}

// next waits for the subscription's next item for at most one heartbeat
// interval; it returns context.DeadlineExceeded if none came.
func (s *server) next(ctx context.Context, sub *topics.Subscription[topics.Value]) (topics.Item[topics.Value], error) {
	wait, cancel := context.WithTimeout(ctx, s.cfg.Heartbeat)
	defer cancel()
	item, err := sub.Next(wait)
	if err != nil && !errors.Is(err, topics.ErrClosed) && ctx.Err() == nil {
		return item, context.DeadlineExceeded // only the wait ended
	}
	return item, err
}

// An eventID is an SSE event ID: the page and sequence of a message, as
// "page:seq".
type eventID struct{ page, seq uint64 }

func (id eventID) String() string { return fmt.Sprintf("%d:%d", id.page, id.seq) }

func parseEventID(s string) (eventID, error) {
	p, q, ok := strings.Cut(s, ":")
	page, err1 := strconv.ParseUint(p, 10, 64)
	seq, err2 := strconv.ParseUint(q, 10, 64)
	if !ok || err1 != nil || err2 != nil || seq == math.MaxUint64 {
		return eventID{}, fmt.Errorf("last event ID %q: want <page>:<sequence>, as sent in the stream", s)
	}
	return eventID{page, seq}, nil
}

// An eventWriter writes Server-Sent Events into a buffer, and flush sends
// them to the browser with a write deadline.
type eventWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     bytes.Buffer
}

func (e *eventWriter) retry(d time.Duration) {
	fmt.Fprintf(&e.buf, "retry: %d\n\n", d.Milliseconds())
}

func (e *eventWriter) comment(text string) {
	fmt.Fprintf(&e.buf, ": %s\n\n", text)
}

// event adds an event; an empty name is the default "message" event. JSON
// has no raw line breaks, so data fits on one line.
func (e *eventWriter) event(name, id string, data any) {
	if name != "" {
		fmt.Fprintf(&e.buf, "event: %s\n", name)
	}
	if id != "" {
		fmt.Fprintf(&e.buf, "id: %s\n", id)
	}
	b, _ := json.Marshal(data) // maps of strings, numbers, bools and times
	fmt.Fprintf(&e.buf, "data: %s\n\n", b)
}

// flush sends what was written, failing if the connection does not take it
// within the timeout.
func (e *eventWriter) flush() error {
	defer e.buf.Reset()
	err := e.rc.SetWriteDeadline(time.Now().Add(e.timeout))
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := e.w.Write(e.buf.Bytes()); err != nil {
		return err
	}
	return e.rc.Flush()
}

// decodeJSON reads a JSON object of at most limit bytes into v, or answers
// 400 (413 for a body over the limit) and returns false.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is over %d bytes", limit))
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, "the body must be one JSON object: "+err.Error())
		return false
	}
	return true
}

// writeTopicsError answers with the status for an error of the engine, as
// examples/chat/README.md ("Errors and status codes") maps them.
func writeTopicsError(w http.ResponseWriter, err error) {
	var limit *topics.LimitError
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, access.ErrTokenExpired), errors.Is(err, access.ErrTokenInvalid):
		code = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="chat", error="invalid_token"`)
	case errors.Is(err, access.ErrPermissionDenied):
		code = http.StatusForbidden
	case errors.As(err, &limit):
		code = http.StatusTooManyRequests
		if limit.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(limit.RetryAfter.Seconds()))))
		}
	case errors.Is(err, topics.ErrInvalidName), errors.Is(err, topics.ErrValueTooLarge):
		code = http.StatusBadRequest
	case errors.Is(err, topics.ErrCacheNotFound):
		code = http.StatusNotFound
	case errors.Is(err, topics.ErrClosed):
		code = http.StatusServiceUnavailable // shutting down
	}
	writeError(w, code, err.Error())
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
