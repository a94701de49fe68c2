package main

// End-to-end tests: the page in headless Chromium, driven through
// chromedriver with the W3C WebDriver protocol (plain HTTP and JSON, see
// https://www.w3.org/TR/webdriver2/), so the module needs no browser
// library.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	// e2eRequiredEnv, when set (CI sets it), turns a missing browser into
	// a failure instead of a skip.
	e2eRequiredEnv = "CHAT_E2E_REQUIRED"
	// screenshotsEnv names a folder to keep screenshots in; by default
	// they go to the test's temporary folder.
	screenshotsEnv = "CHAT_E2E_SCREENSHOTS"
	// pageTimeout bounds every wait for the page.
	pageTimeout = 15 * time.Second
)

// findBrowser returns the paths of Chromium and chromedriver, or skips the
// test (fails it under CHAT_E2E_REQUIRED) if either is missing.
func findBrowser(t *testing.T) (chromium, driver string) {
	t.Helper()
	look := func(names ...string) string {
		for _, n := range names {
			if n == "" {
				continue
			}
			if p, err := exec.LookPath(n); err == nil {
				return p
			}
		}
		return ""
	}
	chromium = look("/usr/bin/chromium", "chromium", "chromium-browser")
	if p, ok := os.LookupEnv("CHROMIUM"); ok {
		chromium = look(p)
	}
	driver = look("/usr/bin/chromedriver", "chromedriver")
	if p, ok := os.LookupEnv("CHROMEDRIVER"); ok {
		driver = look(p)
	}
	if chromium == "" || driver == "" {
		msg := "the browser test needs Chromium and chromedriver: on Debian, apt-get install -y chromium chromium-driver " +
			"(or set CHROMIUM and CHROMEDRIVER to their paths)"
		if os.Getenv(e2eRequiredEnv) != "" {
			t.Fatalf("%s is set: %s", e2eRequiredEnv, msg)
		}
		t.Skip(msg)
	}
	return chromium, driver
}

// A webDriver is a chromedriver process this test started.
type webDriver struct {
	t        *testing.T
	url      string
	client   *http.Client
	chromium string
	dir      string // for browser profiles
}

// startWebDriver starts chromedriver on a free port and stops it, and the
// browsers it started, when the test ends.
func startWebDriver(t *testing.T, chromium, path string) *webDriver {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{}, Timeout: 60 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	// Made before chromedriver starts, so removed after it and its
	// browsers have gone: the log, and the browsers' profiles.
	dir := t.TempDir()
	logFile, err := os.Create(filepath.Join(dir, "chromedriver.log"))
	require.NoError(t, err)
	t.Cleanup(func() { logFile.Close() })

	for attempt := 1; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close() // a race with another program taking the port is retried
		cmd := exec.Command(path, fmt.Sprintf("--port=%d", port))
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its browsers too
		require.NoError(t, cmd.Start())
		exited := make(chan struct{}) // closed when it has exited
		go func() {
			cmd.Wait()
			close(exited)
		}()
		wd := &webDriver{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", port), client: client, chromium: chromium, dir: dir}
		t.Cleanup(func() {
			// Ask it to quit, then make sure that it and every browser it
			// started are gone.
			if resp, err := client.Get(wd.url + "/shutdown"); err == nil {
				resp.Body.Close()
			}
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // leftovers of its group, if any
		})
		if wd.ready(exited) {
			return wd
		}
		if attempt == 3 {
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("chromedriver did not start; its log:\n%s", log)
		}
	}
}

// ready polls chromedriver's status until it is ready, it exits, or time
// runs out.
func (d *webDriver) ready(exited <-chan struct{}) bool {
	deadline := time.Now().Add(pageTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		var status struct{ Ready bool }
		if err := d.call("GET", "/status", nil, &status); err == nil && status.Ready {
			return true
		}
		select {
		case <-exited:
			return false
		case <-tick.C:
		}
	}
	return false
}

// call sends one WebDriver command and decodes its "value" into out.
func (d *webDriver) call(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, d.url+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var reply struct{ Value json.RawMessage }
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		return fmt.Errorf("%s %s: %s: %w", method, path, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Message string }
		json.Unmarshal(reply.Value, &e)
		return fmt.Errorf("%s %s: %s: %s", method, path, e.Error, e.Message)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(reply.Value, out)
}

// A browser is one WebDriver session: a headless Chromium with one page.
type browser struct {
	t    *testing.T
	d    *webDriver
	name string // for messages
	path string // /session/<id>
}

// newBrowsers starts one headless Chromium per name, each with its own
// profile, all at once (starting one takes seconds); they are closed when
// the test ends.
func (d *webDriver) newBrowsers(names ...string) []*browser {
	d.t.Helper()
	browsers := make([]*browser, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		args := []string{
			// What Chromium needs on this kind of machine (no sandbox as
			// root, no GPU, no network but loopback), then a fixed window
			// size for the screenshot.
			"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--disable-dev-shm-usage", "--window-size=900,760",
			"--user-data-dir=" + filepath.Join(d.dir, "profile-"+name),
		}
		caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
			"browserName":        "chrome",
			"goog:chromeOptions": map[string]any{"binary": d.chromium, "args": args},
		}}}
		wg.Go(func() {
			var session struct{ SessionID string }
			if errs[i] = d.call("POST", "/session", caps, &session); errs[i] == nil {
				browsers[i] = &browser{t: d.t, d: d, name: name, path: "/session/" + session.SessionID}
			}
		})
	}
	wg.Wait()
	for _, b := range browsers {
		if b != nil {
			d.t.Cleanup(func() { d.call("DELETE", b.path, nil, nil) })
		}
	}
	require.NoError(d.t, errors.Join(errs...), "starting Chromium")
	return browsers
}

func (b *browser) do(method, path string, in, out any) {
	b.t.Helper()
	require.NoError(b.t, b.d.call(method, b.path+path, in, out), "%s's browser", b.name)
}

func (b *browser) open(url string) {
	b.t.Helper()
	b.do("POST", "/url", map[string]string{"url": url}, nil)
}

// element finds the element the CSS selector picks.
func (b *browser) element(css string) string {
	b.t.Helper()
	var ref map[string]string
	b.do("POST", "/element", map[string]string{"using": "css selector", "value": css}, &ref)
	const key = "element-6066-11e4-a52e-4f735466cecf" // the W3C element reference
	require.NotEmpty(b.t, ref[key], "element %s", css)
	return "/element/" + ref[key]
}

// typeInto replaces the text of an input, as a person typing would.
func (b *browser) typeInto(css, text string) {
	b.t.Helper()
	el := b.element(css)
	b.do("POST", el+"/clear", map[string]any{}, nil)
	b.do("POST", el+"/value", map[string]string{"text": text}, nil)
}

func (b *browser) click(css string) {
	b.t.Helper()
	b.do("POST", b.element(css)+"/click", map[string]any{}, nil)
}

// text returns an element's rendered text.
func (b *browser) text(css string) string {
	b.t.Helper()
	var s string
	b.do("GET", b.element(css)+"/text", nil, &s)
	return s
}

// value returns an input's value.
func (b *browser) value(css string) string {
	b.t.Helper()
	var s string
	b.do("POST", "/execute/sync", map[string]any{
		"script": `return document.querySelector(arguments[0]).value;`,
		"args":   []any{css},
	}, &s)
	return s
}

// lines returns the text of the chat's lines of one kind ("msg": messages
// as "from: text"; "notice": notices), read from the DOM.
func (b *browser) lines(kind string) []string {
	b.t.Helper()
	var out []string
	b.do("POST", "/execute/sync", map[string]any{
		"script": `return [...document.querySelectorAll("#messages li." + arguments[0])]
			.map((li) => [...li.children].map((c) => c.textContent).join(": "));`,
		"args": []any{kind},
	}, &out)
	return out
}

// waitFor polls the page until cond holds; state describes what the page
// showed, for the failure message.
func (b *browser) waitFor(what string, cond func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(pageTimeout)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			b.t.Fatalf("%s's page: after %v, still waiting for %s; status %q, messages %q, notices %q",
				b.name, pageTimeout, what, b.text("#status"), b.lines("msg"), b.lines("notice"))
		}
		<-tick.C
	}
}

func (b *browser) waitForStatus(substr string) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("status %q", substr), func() bool { return strings.Contains(b.text("#status"), substr) })
}

func (b *browser) waitForLine(kind, line string) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("%s %q", kind, line), func() bool { return slices.Contains(b.lines(kind), line) })
}

// join fills in the form as a person would and waits until connected.
func (b *browser) join(url, room string) {
	b.t.Helper()
	b.open(url)
	b.typeInto("#name", b.name)
	b.typeInto("#room", room)
	b.click("#join-button")
	b.waitForStatus("Connected as " + b.name)
	assert.Equal(b.t, "#"+room, b.text("#room-title"))
}

func (b *browser) say(text string) {
	b.t.Helper()
	b.typeInto("#text", text)
	b.click("#send-button")
}

// screenshot saves the page as a PNG and logs where.
func (b *browser) screenshot(file string) {
	b.t.Helper()
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		dir = b.t.TempDir()
	}
	var png string
	b.do("GET", "/screenshot", nil, &png)
	data, err := base64.StdEncoding.DecodeString(png)
	require.NoError(b.t, err)
	path := filepath.Join(dir, file)
	require.NoError(b.t, os.WriteFile(path, data, 0o644))
	b.t.Logf("screenshot of %s's page: %s", b.name, path)
}

// serveOn serves h on ln until the returned server is closed (also when
// the test ends).
func serveOn(t *testing.T, h http.Handler, ln net.Listener) *http.Server {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		hs.Serve(ln)
	}()
	t.Cleanup(func() {
		hs.Close()
		<-served
	})
	return hs
}

// listenAgain listens on addr, which was just given up, retrying briefly.
func listenAgain(t *testing.T, addr string) net.Listener {
	t.Helper()
	deadline := time.Now().Add(pageTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			t.Fatalf("listening again on %s: %v", addr, err)
		}
		<-tick.C
	}
}

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
	chromium, driverPath := findBrowser(t)
	start := time.Now()

	rec := &logRecorder{}
	cfg := testConfig(rec)
	cfg.Retry = 200 * time.Millisecond // reconnect quickly
	srv, h, err := newServer(cfg)
	require.NoError(t, err)
	t.Cleanup(srv.close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	url := "http://" + addr + "/"
	first := serveOn(t, h, ln)

	wd := startWebDriver(t, chromium, driverPath)
	browsers := wd.newBrowsers("ada", "bob")
	ada, bob := browsers[0], browsers[1]
	ada.join(url, "e2e")
	bob.join(url, "e2e")
	assert.Equal(t, []string{"You joined e2e as bob."}, bob.lines("notice"))

	ada.say("hello from ada")
	bob.waitForLine("msg", "ada: hello from ada")
	ada.waitForLine("msg", "ada: hello from ada")
	assert.Empty(t, ada.text("#send-error"))
	assert.Empty(t, ada.value("#text"), "the input is cleared once the message is sent")

	// The server goes away: every connection is cut, and nothing listens.
	require.NoError(t, first.Close())
	bob.waitForStatus("reconnecting")
	// Meanwhile carol speaks (through the handler: no browser can connect).
	publishDirect(t, h, "carol", "e2e", "sent while the server was down")

	// The server comes back on the same address. The pages reconnect by
	// themselves with Last-Event-ID, and the server resumes after it: the
	// only way carol's message can reach them.
	second := serveOn(t, h, listenAgain(t, addr))
	const resuming = "Reconnected; resuming after the last message received."
	for _, b := range []*browser{ada, bob} {
		b.waitForLine("msg", "carol: sent while the server was down")
		b.waitForStatus("Connected as " + b.name)
		assert.True(t, rec.has(fmt.Sprintf("stream %q in \"e2e\": resumed after", b.name)), rec)
		assert.Equal(t, 1, count(b.lines("notice"), resuming))
	}
	bob.say("welcome back")
	ada.waitForLine("msg", "bob: welcome back")
	bob.waitForLine("msg", "bob: welcome back")

	// Now a real restart: a new process has a new engine, with a new key
	// and empty rooms. The pages' tokens get a 401 on reconnecting, so the
	// pages fetch new ones and resume with ?last=, and learn that the room
	// restarted when the next message comes.
	require.NoError(t, second.Close())
	srv.close()
	_, h2, err := newServer(cfg)
	require.NoError(t, err)
	serveOn(t, h2, listenAgain(t, addr))
	for _, b := range []*browser{ada, bob} {
		b.waitFor("the second reconnection", func() bool { return count(b.lines("notice"), resuming) == 2 })
	}
	ada.say("after a real restart")
	const restarted = "The room restarted while you were away: what was said meanwhile may be lost."
	for _, b := range []*browser{ada, bob} {
		b.waitForLine("msg", "ada: after a real restart")
		assert.Equal(t, 1, count(b.lines("notice"), restarted), "%s's notices: %q", b.name, b.lines("notice"))
	}

	want := []string{
		"ada: hello from ada",
		"carol: sent while the server was down",
		"bob: welcome back",
		"ada: after a real restart",
	}
	for _, b := range []*browser{ada, bob} {
		assert.Equal(t, want, b.lines("msg"), "%s's page: every message once, in order", b.name)
		b.waitForStatus("Connected as " + b.name)
	}
	assert.Equal(t, "ada", ada.text("#messages li.msg.mine .from"), "ada's own message is marked as hers")
	bob.screenshot("chat-bob.png")
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
	chromium, driverPath := findBrowser(t)
	start := time.Now()

	rec := &logRecorder{}
	cfg := testConfig(rec)
	cfg.TokenLifetime = 3 * time.Second
	srv, h, err := newServer(cfg)
	require.NoError(t, err)
	t.Cleanup(srv.close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String() + "/"
	serveOn(t, h, ln)

	wd := startWebDriver(t, chromium, driverPath)
	ada := wd.newBrowsers("ada")[0]
	// A room the server refuses: the page shows why, and stays on the form.
	ada.open(url)
	ada.typeInto("#name", "ada")
	ada.typeInto("#room", "no spaces")
	ada.click("#join-button")
	ada.waitFor("the join error", func() bool {
		return strings.Contains(ada.text("#join-error"), "room names are 1 to 64 characters of A-Z a-z 0-9 . _ -; ' ' is not one of them")
	})
	assert.Equal(t, "Not connected", ada.text("#status"))

	ada.join(url, "renew")
	ada.say("before the expiry")
	ada.waitForLine("msg", "ada: before the expiry")

	// The stream's expired event makes the page fetch a new token and open
	// a new stream that resumes after the last message.
	ada.waitForLine("notice", "Token expired; fetching a new one.")
	ada.waitForLine("notice", "Reconnected; resuming after the last message received.")
	ada.waitForStatus("Connected as ada")
	assert.True(t, rec.has(`stream "ada" in "renew": token expired`), rec)
	assert.True(t, rec.has(`stream "ada" in "renew": resumed after`), rec)

	ada.say("after the expiry")
	ada.waitForLine("msg", "ada: after the expiry")
	assert.Equal(t, []string{"ada: before the expiry", "ada: after the expiry"}, ada.lines("msg"))
	ada.screenshot("chat-renewed.png")
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}
