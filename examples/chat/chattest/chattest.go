// Package chattest drives the chat's page in headless Chromium, for the
// chat's end-to-end tests and for those of programs built on its server
// (natsbridge's replicas). It speaks the W3C WebDriver protocol to
// chromedriver (plain HTTP and JSON, see
// https://www.w3.org/TR/webdriver2/), so it needs no browser library.
//
// It is test machinery: its functions take a *testing.T and fail it.
package chattest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	// RequiredEnv, when set (CI sets it), turns a missing browser into
	// a failure instead of a skip.
	RequiredEnv = "CHAT_E2E_REQUIRED"
	// ScreenshotsEnv names a folder to keep screenshots in; by default
	// they go to the test's temporary folder.
	ScreenshotsEnv = "CHAT_E2E_SCREENSHOTS"
	// PageTimeout bounds every wait for the page.
	PageTimeout = 15 * time.Second
)

// FindBrowser returns the paths of Chromium and chromedriver, or skips the
// test (fails it under CHAT_E2E_REQUIRED) if either is missing.
func FindBrowser(t *testing.T) (chromium, driver string) {
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
		if os.Getenv(RequiredEnv) != "" {
			t.Fatalf("%s is set: %s", RequiredEnv, msg)
		}
		t.Skip(msg)
	}
	return chromium, driver
}

// A WebDriver is a chromedriver process a test started.
type WebDriver struct {
	t        *testing.T
	url      string
	client   *http.Client
	chromium string
	dir      string // for browser profiles
}

// StartWebDriver starts chromedriver on a free port and stops it, and the
// browsers it started, when the test ends.
func StartWebDriver(t *testing.T, chromium, path string) *WebDriver {
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
		wd := &WebDriver{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", port), client: client, chromium: chromium, dir: dir}
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
func (d *WebDriver) ready(exited <-chan struct{}) bool {
	deadline := time.Now().Add(PageTimeout)
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
func (d *WebDriver) call(method, path string, in, out any) error {
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

// A Browser is one WebDriver session: a headless Chromium with one page,
// used by the person Name.
type Browser struct {
	Name string // who uses it: the name it joins with, and in messages
	t    *testing.T
	d    *WebDriver
	path string // /session/<id>
}

// NewBrowsers starts one headless Chromium per name, each with its own
// profile, all at once (starting one takes seconds); they are closed when
// the test ends.
func (d *WebDriver) NewBrowsers(names ...string) []*Browser {
	d.t.Helper()
	browsers := make([]*Browser, len(names))
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
				browsers[i] = &Browser{t: d.t, d: d, Name: name, path: "/session/" + session.SessionID}
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

func (b *Browser) do(method, path string, in, out any) {
	b.t.Helper()
	require.NoError(b.t, b.d.call(method, b.path+path, in, out), "%s's browser", b.Name)
}

// Open loads url.
func (b *Browser) Open(url string) {
	b.t.Helper()
	b.do("POST", "/url", map[string]string{"url": url}, nil)
}

// element finds the element the CSS selector picks.
func (b *Browser) element(css string) string {
	b.t.Helper()
	var ref map[string]string
	b.do("POST", "/element", map[string]string{"using": "css selector", "value": css}, &ref)
	const key = "element-6066-11e4-a52e-4f735466cecf" // the W3C element reference
	require.NotEmpty(b.t, ref[key], "element %s", css)
	return "/element/" + ref[key]
}

// TypeInto replaces the text of an input, as a person typing would.
func (b *Browser) TypeInto(css, text string) {
	b.t.Helper()
	el := b.element(css)
	b.do("POST", el+"/clear", map[string]any{}, nil)
	b.do("POST", el+"/value", map[string]string{"text": text}, nil)
}

// Click clicks the element the CSS selector picks.
func (b *Browser) Click(css string) {
	b.t.Helper()
	b.do("POST", b.element(css)+"/click", map[string]any{}, nil)
}

// Text returns an element's rendered text.
func (b *Browser) Text(css string) string {
	b.t.Helper()
	var s string
	b.do("GET", b.element(css)+"/text", nil, &s)
	return s
}

// Value returns an input's value.
func (b *Browser) Value(css string) string {
	b.t.Helper()
	var s string
	b.do("POST", "/execute/sync", map[string]any{
		"script": `return document.querySelector(arguments[0]).value;`,
		"args":   []any{css},
	}, &s)
	return s
}

// Lines returns the text of the chat's lines of one kind ("msg": messages
// as "from: text"; "notice": notices), read from the DOM.
func (b *Browser) Lines(kind string) []string {
	b.t.Helper()
	var out []string
	b.do("POST", "/execute/sync", map[string]any{
		"script": `return [...document.querySelectorAll("#messages li." + arguments[0])]
			.map((li) => [...li.children].map((c) => c.textContent).join(": "));`,
		"args": []any{kind},
	}, &out)
	return out
}

// WaitFor polls the page until cond holds; state describes what the page
// showed, for the failure message.
func (b *Browser) WaitFor(what string, cond func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(PageTimeout)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			b.t.Fatalf("%s's page: after %v, still waiting for %s; status %q, messages %q, notices %q",
				b.Name, PageTimeout, what, b.Text("#status"), b.Lines("msg"), b.Lines("notice"))
		}
		<-tick.C
	}
}

// WaitForStatus waits until the page's status pill contains substr.
func (b *Browser) WaitForStatus(substr string) {
	b.t.Helper()
	b.WaitFor(fmt.Sprintf("status %q", substr), func() bool { return strings.Contains(b.Text("#status"), substr) })
}

// WaitForLine waits until the page shows a line of that kind (see Lines).
func (b *Browser) WaitForLine(kind, line string) {
	b.t.Helper()
	b.WaitFor(fmt.Sprintf("%s %q", kind, line), func() bool { return slices.Contains(b.Lines(kind), line) })
}

// Join fills in the form as a person would and waits until connected.
func (b *Browser) Join(url, room string) {
	b.t.Helper()
	b.Open(url)
	b.TypeInto("#name", b.Name)
	b.TypeInto("#room", room)
	b.Click("#join-button")
	b.WaitForStatus("Connected as " + b.Name)
	assert.Equal(b.t, "#"+room, b.Text("#room-title"))
}

// Say sends a message, as a person typing it would.
func (b *Browser) Say(text string) {
	b.t.Helper()
	b.TypeInto("#text", text)
	b.Click("#send-button")
}

// Screenshot saves the page as a PNG and logs where.
func (b *Browser) Screenshot(file string) {
	b.t.Helper()
	dir := os.Getenv(ScreenshotsEnv)
	if dir == "" {
		dir = b.t.TempDir()
	}
	var png string
	b.do("GET", "/screenshot", nil, &png)
	data, err := base64.StdEncoding.DecodeString(png)
	require.NoError(b.t, err)
	path := filepath.Join(dir, file)
	require.NoError(b.t, os.WriteFile(path, data, 0o644))
	b.t.Logf("screenshot of %s's page: %s", b.Name, path)
}

// ServeOn serves h on ln until the returned server is closed (also when
// the test ends).
func ServeOn(t *testing.T, h http.Handler, ln net.Listener) *http.Server {
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

// ListenAgain listens on addr, which was just given up, retrying briefly.
func ListenAgain(t *testing.T, addr string) net.Listener {
	t.Helper()
	deadline := time.Now().Add(PageTimeout)
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

// A LogRecorder collects a chat server's log lines (give its Logf to
// chatserver.Config.Logf). Unlike t.Logf, it may be called after the test
// has ended. It is safe for concurrent use.
type LogRecorder struct {
	mu    sync.Mutex
	lines []string
}

// Logf records a line.
func (l *LogRecorder) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// Has reports whether a line contains substr.
func (l *LogRecorder) Has(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, substr) {
			return true
		}
	}
	return false
}

// String returns the lines, one per line.
func (l *LogRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
