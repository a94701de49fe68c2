package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ringbus/topics/access"
	"github.com/ringbus/topics/examples/chat/chatserver"
	"github.com/ringbus/topics/examples/chat/chattest"
	"github.com/ringbus/topics/natsbridge/internal/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startReplica starts a replica connected to server i of c, closed when
// the test ends.
func startReplica(t *testing.T, c *natstest.Cluster, i int, key []byte, rec *chattest.LogRecorder) *replica {
	cfg := chatserver.DefaultConfig()
	cfg.Keys = [][]byte{key}
	cfg.Retry = 200 * time.Millisecond // pages reconnect quickly
	cfg.Logf = rec.Logf
	r, h, err := newReplica(c.Connect(i), cfg)
	require.NoError(t, err)
	t.Cleanup(r.close)
	r.handler = h
	return r
}

// Two replicas on a NATS cluster, two people in one room, each on a
// replica: what one says appears on the other's page. Then one person's
// page moves to the other replica, as a load balancer would move it (the
// first replica's address now leads to the second), while a message is
// sent: the page resumes there with the same token, shows that message
// once and nothing twice, and is not told that anything was lost.
func TestBrowserAcrossReplicas(t *testing.T) {
	chromium, driverPath := chattest.FindBrowser(t)
	start := time.Now()
	c := natstest.NewCluster(t, 3)
	key := []byte(strings.Repeat("k", access.MinKeyLen))
	recA, recB := &chattest.LogRecorder{}, &chattest.LogRecorder{}
	a, b := startReplica(t, c, 0, key, recA), startReplica(t, c, 1, key, recB)

	lnA, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addrA := lnA.Addr().String()
	servedA := chattest.ServeOn(t, a.handler, lnA)
	lnB, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	chattest.ServeOn(t, b.handler, lnB)
	urlA, urlB := "http://"+addrA+"/", "http://"+lnB.Addr().String()+"/"

	wd := chattest.StartWebDriver(t, chromium, driverPath)
	browsers := wd.NewBrowsers("ada", "bob")
	ada, bob := browsers[0], browsers[1]
	ada.Join(urlA, "e2e")
	bob.Join(urlB, "e2e")

	ada.Say("hello from A")
	bob.WaitForLine("msg", "ada: hello from A")
	ada.WaitForLine("msg", "ada: hello from A")
	bob.Say("hello from B")
	ada.WaitForLine("msg", "bob: hello from B")
	bob.WaitForLine("msg", "bob: hello from B")

	// A goes away; its address now leads to B.
	require.NoError(t, servedA.Close())
	ada.WaitForStatus("reconnecting")
	bob.Say("while ada moves")
	bob.WaitForLine("msg", "bob: while ada moves")
	chattest.ServeOn(t, b.handler, chattest.ListenAgain(t, addrA))
	ada.WaitForLine("msg", "bob: while ada moves")
	ada.WaitForStatus("Connected as ada")
	assert.True(t, recB.Has(`stream "ada" in "e2e": resumed after`), "ada resumed on B")
	ada.Say("after the move")
	bob.WaitForLine("msg", "ada: after the move")
	ada.WaitForLine("msg", "ada: after the move")

	want := []string{"ada: hello from A", "bob: hello from B", "bob: while ada moves", "ada: after the move"}
	for _, br := range []*chattest.Browser{ada, bob} {
		assert.Equal(t, want, br.Lines("msg"), "%s's page: every message once, in order", br.Name)
		for _, n := range br.Lines("notice") {
			assert.NotContains(t, n, "restarted", "%s's page", br.Name)
			assert.NotContains(t, n, "missed", "%s's page", br.Name)
		}
	}
	ada.Screenshot("chatreplicas-ada.png")
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}

func TestReplicasNeedSharedKeys(t *testing.T) {
	c := natstest.NewCluster(t, 1)
	_, _, err := newReplica(c.Connect(0), chatserver.DefaultConfig())
	require.Error(t, err)
}
