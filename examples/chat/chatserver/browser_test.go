package chatserver

// End-to-end tests: the page in headless Chromium, driven through
// chromedriver by package chattest.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics/examples/chat/chattest"
)

// publishDirect publishes a message through the handler itself, without
// any listener: what a browser would send, while no browser can connect.
func publishDirect(t *testing.T, h http.Handler, name, room, text string) {
	t.Helper()
	rec := httptest.NewRecorder()
	body, _ := json.Marshal(map[string]string{"name": name, "room": room})
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/token", bytes.NewReader(body)))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var tok struct{ Token string }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &tok))

	rec = httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/rooms/"+room+"/messages", strings.NewReader(messageBody(text)))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
}

// Two people chat in one room. The HTTP server goes away and comes back on
// the same address, with the same engine, while a message is sent: both
// pages resume, get that message once, and chat on. Then the whole server
// is replaced, as a new process would: the pages renew their tokens,
// resume, and are told the room restarted.
func TestBrowserChatSurvivesRestart(t *testing.T) {
	chromium, driverPath := chattest.FindBrowser(t)
	start := time.Now()

	rec := &logRecorder{}
	cfg := testConfig(rec)
	cfg.Retry = 200 * time.Millisecond // reconnect quickly
	srv, h, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	url := "http://" + addr + "/"
	first := chattest.ServeOn(t, h, ln)

	wd := chattest.StartWebDriver(t, chromium, driverPath)
	browsers := wd.NewBrowsers("ada", "bob")
	ada, bob := browsers[0], browsers[1]
	ada.Join(url, "e2e")
	bob.Join(url, "e2e")
	assert.Equal(t, []string{"You joined e2e as bob."}, bob.Lines("notice"))

	ada.Say("hello from ada")
	bob.WaitForLine("msg", "ada: hello from ada")
	ada.WaitForLine("msg", "ada: hello from ada")
	assert.Empty(t, ada.Text("#send-error"))
	assert.Empty(t, ada.Value("#text"), "the input is cleared once the message is sent")

	// The server goes away: every connection is cut, and nothing listens.
	require.NoError(t, first.Close())
	bob.WaitForStatus("reconnecting")
	// Meanwhile carol speaks (through the handler: no browser can connect).
	publishDirect(t, h, "carol", "e2e", "sent while the server was down")

	// The server comes back on the same address. The pages reconnect by
	// themselves with Last-Event-ID, and the server resumes after it: the
	// only way carol's message can reach them.
	second := chattest.ServeOn(t, h, chattest.ListenAgain(t, addr))
	const resuming = "Reconnected; resuming after the last message received."
	for _, b := range []*chattest.Browser{ada, bob} {
		b.WaitForLine("msg", "carol: sent while the server was down")
		b.WaitForStatus("Connected as " + b.Name)
		assert.True(t, rec.Has(fmt.Sprintf("stream %q in \"e2e\": resumed after", b.Name)), rec)
		assert.Equal(t, 1, count(b.Lines("notice"), resuming))
	}
	bob.Say("welcome back")
	ada.WaitForLine("msg", "bob: welcome back")
	bob.WaitForLine("msg", "bob: welcome back")

	// Now a real restart: a new process has a new engine, with a new key
	// and empty rooms. The pages' tokens get a 401 on reconnecting, so the
	// pages fetch new ones and resume with ?last=, and learn that the room
	// restarted when the next message comes.
	require.NoError(t, second.Close())
	srv.Close()
	_, h2, err := New(cfg)
	require.NoError(t, err)
	chattest.ServeOn(t, h2, chattest.ListenAgain(t, addr))
	for _, b := range []*chattest.Browser{ada, bob} {
		b.WaitFor("the second reconnection", func() bool { return count(b.Lines("notice"), resuming) == 2 })
	}
	ada.Say("after a real restart")
	const restarted = "The room restarted while you were away: what was said meanwhile may be lost."
	for _, b := range []*chattest.Browser{ada, bob} {
		b.WaitForLine("msg", "ada: after a real restart")
		assert.Equal(t, 1, count(b.Lines("notice"), restarted), "%s's notices: %q", b.Name, b.Lines("notice"))
	}

	want := []string{
		"ada: hello from ada",
		"carol: sent while the server was down",
		"bob: welcome back",
		"ada: after a real restart",
	}
	for _, b := range []*chattest.Browser{ada, bob} {
		assert.Equal(t, want, b.Lines("msg"), "%s's page: every message once, in order", b.Name)
		b.WaitForStatus("Connected as " + b.Name)
	}
	assert.Equal(t, "ada", ada.Text("#messages li.msg.mine .from"), "ada's own message is marked as hers")
	bob.Screenshot("chat-bob.png")
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}

func count(lines []string, line string) int {
	n := 0
	for _, l := range lines {
		if l == line {
			n++
		}
	}
	return n
}

// A page whose token expires gets a new one and resumes by itself.
func TestBrowserRenewsExpiredToken(t *testing.T) {
	chromium, driverPath := chattest.FindBrowser(t)
	start := time.Now()

	rec := &logRecorder{}
	cfg := testConfig(rec)
	cfg.TokenLifetime = 3 * time.Second
	srv, h, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String() + "/"
	chattest.ServeOn(t, h, ln)

	wd := chattest.StartWebDriver(t, chromium, driverPath)
	ada := wd.NewBrowsers("ada")[0]
	// A room the server refuses: the page shows why, and stays on the form.
	ada.Open(url)
	ada.TypeInto("#name", "ada")
	ada.TypeInto("#room", "no spaces")
	ada.Click("#join-button")
	ada.WaitFor("the join error", func() bool {
		return strings.Contains(ada.Text("#join-error"), "room names are 1 to 64 characters of A-Z a-z 0-9 . _ -; ' ' is not one of them")
	})
	assert.Equal(t, "Not connected", ada.Text("#status"))

	ada.Join(url, "renew")
	ada.Say("before the expiry")
	ada.WaitForLine("msg", "ada: before the expiry")

	// The stream's expired event makes the page fetch a new token and open
	// a new stream that resumes after the last message.
	ada.WaitForLine("notice", "Token expired; fetching a new one.")
	ada.WaitForLine("notice", "Reconnected; resuming after the last message received.")
	ada.WaitForStatus("Connected as ada")
	assert.True(t, rec.Has(`stream "ada" in "renew": token expired`), rec)
	assert.True(t, rec.Has(`stream "ada" in "renew": resumed after`), rec)

	ada.Say("after the expiry")
	ada.WaitForLine("msg", "ada: after the expiry")
	assert.Equal(t, []string{"ada: before the expiry", "ada: after the expiry"}, ada.Lines("msg"))
	ada.Screenshot("chat-renewed.png")
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}
