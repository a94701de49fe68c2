package peerbench

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ringbus/topics/internal/benchkit"
)

// natsPending is the pending-message limit of every NATS subscription: like
// the ring of topics and the channels of the baseline, 1,024 items.
const natsPending = 1024

// natsUnlimited is the pending-message limit of nats-unlimited: none
// (SetPendingLimits takes a negative value as "not limited"), so the client
// never drops a message, and queues without bound instead.
const natsUnlimited = -1

// natsSystem is core NATS (no JetStream) with the server embedded in the
// process: no listener (DontListen), and one client connection over an
// in-process pipe (nats.InProcessServer), shared by the publisher and all
// subscribers, as NATS recommends one connection per application.
// Subscribers that drain are asynchronous subscriptions: nats.go runs each
// one's callback in a goroutine of its own.
type natsSystem struct {
	tb      testing.TB
	pending int // pending-message limit of each subscription; natsUnlimited for none
	srv     *server.Server
	nc      *nats.Conn
	mu      sync.Mutex
	async   []natsSub
	lost    error // why the connection dropped, if it did before Close
	closing bool
	wg      sync.WaitGroup // one count per asynchronous subscription
}

type natsSub struct {
	sub  *nats.Subscription
	sink *benchkit.Sink
}

func newNATS(tb testing.TB) benchkit.System { return newNATSSystem(tb, natsPending) }

func newNATSUnlimited(tb testing.TB) benchkit.System { return newNATSSystem(tb, natsUnlimited) }

func newNATSSystem(tb testing.TB, pending int) *natsSystem {
	srv, err := server.NewServer(&server.Options{DontListen: true, NoLog: true, NoSigs: true})
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats: the embedded server did not start")
	}
	s := &natsSystem{tb: tb, pending: pending, srv: srv}
	s.nc, err = nats.Connect("", nats.InProcessServer(srv),
		// Slow-consumer errors are expected with stalled subscribers; drops
		// are counted with Subscription.Dropped.
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
		// If the server cut the connection (a slow consumer, say), a
		// reconnecting client would buffer publishes and look fast: fail
		// instead.
		nats.NoReconnect(),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			s.mu.Lock()
			if s.lost == nil && !s.closing {
				s.lost = fmt.Errorf("nats: connection lost: %v", err)
			}
			s.mu.Unlock()
		}))
	if err != nil {
		srv.Shutdown()
		tb.Fatal(err)
	}
	return s
}

func (s *natsSystem) Publish() {
	if err := s.nc.Publish(topic, benchkit.Payload); err != nil {
		s.tb.Fatal(err)
	}
}

// Flush waits until the server has processed everything published.
func (s *natsSystem) Flush() {
	if err := s.nc.Flush(); err != nil {
		s.tb.Fatal(err)
	}
}

func (s *natsSystem) Drain(sink *benchkit.Sink) {
	sub, err := s.nc.Subscribe(topic, func(*nats.Msg) { sink.Deliver(0) })
	if err != nil {
		s.tb.Fatal(err)
	}
	s.wg.Add(1)
	// Called when the subscription's goroutine exits, after its last callback.
	sub.SetClosedHandler(func(string) { s.wg.Done() })
	s.limit(sub)
	s.mu.Lock()
	s.async = append(s.async, natsSub{sub, sink})
	s.mu.Unlock()
}

func (s *natsSystem) Stall() {
	sub, err := s.nc.SubscribeSync(topic) // and never NextMsg
	if err != nil {
		s.tb.Fatal(err)
	}
	s.limit(sub)
}

// limit sets the pending limits and waits until the server has the
// subscription.
func (s *natsSystem) limit(sub *nats.Subscription) {
	if err := sub.SetPendingLimits(s.pending, -1); err != nil {
		s.tb.Fatal(err)
	}
	s.Flush()
}

func (s *natsSystem) Close() {
	s.mu.Lock()
	async := s.async
	s.async = nil
	s.closing = true
	lost := s.lost
	s.mu.Unlock()
	if lost != nil {
		s.tb.Error(lost)
	}
	for _, a := range async {
		if n, err := a.sub.Dropped(); err == nil && n > 0 {
			a.sink.Dropped(uint64(n))
		}
		_ = a.sub.Unsubscribe()
	}
	s.wg.Wait()
	s.nc.Close()
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
}
