// Package natstest runs NATS clusters with JetStream inside a test process:
// the servers of nats-server, embedded, on loopback, their streams in memory.
// It stands in for a real cluster in the tests, benchmarks and examples of
// natsbridge: no Docker, no binaries.
//
// A cluster's servers route to each other through fixed ports, as the
// servers of a real cluster do: nats-server's JetStream wants its routes
// configured (not only learned), and a server that is restarted comes back
// on its ports. The ports are picked free on 127.0.0.1 (port 0) just before
// the servers start; should another program take one in between, the
// cluster is started again on new ones.
package natstest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Timeout bounds every wait of this package: a server starting, a cluster
// forming, a JetStream leader being elected.
const Timeout = 20 * time.Second

// A Cluster is a NATS cluster of servers with JetStream, all in this
// process. Its methods are safe for concurrent use.
type Cluster struct {
	tb    testing.TB
	name  string
	nodes []*Node
}

// A Node is one server of a Cluster. It can be stopped and started again.
type Node struct {
	c          *Cluster
	index      int
	name       string
	storeDir   string
	clientPort int
	routePort  int

	mu  sync.Mutex
	srv *server.Server // nil while stopped
}

// NewCluster starts a cluster of n servers and waits until it is formed and
// JetStream has a leader. The servers shut down when the test ends.
func NewCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("natstest: a cluster of %d servers", n)
	}
	var errs []error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		c, err := startCluster(tb, n)
		if err == nil {
			wait := quickStart
			if attempt == startAttempts {
				wait = Timeout
			}
			if err = poll(wait, c.ready); err == nil {
				tb.Cleanup(c.shutdown)
				return c
			}
			c.shutdown()
		}
		errs = append(errs, err)
	}
	tb.Fatalf("natstest: starting a cluster of %d: %v", n, errors.Join(errs...))
	return nil
}

// A cluster's JetStream usually elects its meta leader within a second of
// starting. When the first votes split, the next election comes only after
// an election timeout of 4 to 9 seconds; starting a new cluster is quicker.
const (
	quickStart    = 2 * time.Second
	startAttempts = 4
)

// startCluster starts the servers on ports that were free a moment ago.
func startCluster(tb testing.TB, n int) (*Cluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	c := &Cluster{tb: tb, name: "topics"}
	for i := range n {
		c.nodes = append(c.nodes, &Node{
			c:          c,
			index:      i,
			name:       fmt.Sprintf("n%d", i+1),
			storeDir:   tb.TempDir(),
			clientPort: ports[2*i],
			routePort:  ports[2*i+1],
		})
	}
	// JetStream starts once the routes are up: its meta group then forms
	// with all its peers at once, and elects a leader in a fraction of a
	// second instead of after an election timeout of several.
	for _, nd := range c.nodes {
		if err := nd.start(false); err != nil {
			c.shutdown()
			return nil, err
		}
	}
	if err := c.waitRoutes(); err != nil {
		c.shutdown()
		return nil, err
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, nd := range c.nodes {
		wg.Go(func() { errs[i] = nd.enableJetStream() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.shutdown()
		return nil, err
	}
	return c, nil
}

// waitRoutes waits until every running server has its routes to the
// others.
func (c *Cluster) waitRoutes() error {
	return poll(Timeout, func() error {
		running := c.running()
		for _, s := range running {
			if got := s.NumRoutes(); got < len(running)-1 {
				return fmt.Errorf("server %s has %d routes, want %d", s.Name(), got, len(running)-1)
			}
		}
		return nil
	})
}

func (c *Cluster) running() []*server.Server {
	var running []*server.Server
	for _, nd := range c.nodes {
		if s := nd.server(); s != nil {
			running = append(running, s)
		}
	}
	return running
}

// freePorts returns n distinct ports free on 127.0.0.1, holding them all
// open until every one is found so that none repeats.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (c *Cluster) shutdown() {
	var wg sync.WaitGroup
	for _, nd := range c.nodes {
		wg.Go(nd.Stop)
	}
	wg.Wait()
}

// Nodes returns the cluster's servers.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Node returns server i (from 0).
func (c *Cluster) Node(i int) *Node { return c.nodes[i] }

// URLs returns the client URLs of every server, running or not, joined
// with commas as nats.Connect takes them.
func (c *Cluster) URLs() string {
	s := ""
	for i, nd := range c.nodes {
		if i > 0 {
			s += ","
		}
		s += nd.ClientURL()
	}
	return s
}

// WaitReady waits until every running server has its routes to the other
// running servers and JetStream has a meta leader that every running
// server follows.
func (c *Cluster) WaitReady() error { return poll(Timeout, c.ready) }

func (c *Cluster) ready() error {
	running := c.running()
	leaders := 0
	for _, s := range running {
		if got := s.NumRoutes(); got < len(running)-1 {
			return fmt.Errorf("server %s has %d routes, want %d", s.Name(), got, len(running)-1)
		}
		if !s.JetStreamIsClustered() && len(c.nodes) > 1 {
			return fmt.Errorf("server %s: JetStream is not clustered", s.Name())
		}
		if s.JetStreamIsLeader() {
			leaders++
		}
		if !s.JetStreamIsCurrent() {
			return fmt.Errorf("server %s: JetStream is not current", s.Name())
		}
	}
	if leaders != 1 && len(running) > len(c.nodes)/2 {
		return fmt.Errorf("%d JetStream meta leaders", leaders)
	}
	return nil
}

// Connect connects to server i, and to the others should it fail. The
// connection is closed when the test ends.
func (c *Cluster) Connect(i int, opts ...nats.Option) *nats.Conn {
	c.tb.Helper()
	nd := c.nodes[i]
	servers := nd.ClientURL()
	for _, other := range c.nodes {
		if other != nd {
			servers += "," + other.ClientURL()
		}
	}
	opts = append([]nats.Option{nats.DontRandomize(), nats.Name("natstest " + nd.name)}, opts...)
	nc, err := nats.Connect(servers, opts...)
	if err != nil {
		c.tb.Fatalf("natstest: connecting to %s: %v", nd.name, err)
	}
	c.tb.Cleanup(nc.Close)
	return nc
}

// ConnectOnly connects to server i and no other, even when that one is
// down: what a process sees when NATS is unreachable. The connection keeps
// trying to reconnect, and is closed when the test ends.
func (c *Cluster) ConnectOnly(i int, opts ...nats.Option) *nats.Conn {
	c.tb.Helper()
	nd := c.nodes[i]
	opts = append([]nats.Option{nats.IgnoreDiscoveredServers(), nats.MaxReconnects(-1), nats.Name("natstest only " + nd.name)}, opts...)
	nc, err := nats.Connect(nd.ClientURL(), opts...)
	if err != nil {
		c.tb.Fatalf("natstest: connecting to %s: %v", nd.name, err)
	}
	c.tb.Cleanup(nc.Close)
	return nc
}

// Name returns the server's name (n1, n2, …), which JetStream reports as the
// leader or peer of a stream.
func (nd *Node) Name() string { return nd.name }

// ClientURL returns the URL clients connect to. It stays the same when the
// server is restarted.
func (nd *Node) ClientURL() string {
	return "nats://127.0.0.1:" + strconv.Itoa(nd.clientPort)
}

// Server returns the running server, or nil if it is stopped.
func (nd *Node) server() *server.Server {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.srv
}

// Running reports whether the server runs.
func (nd *Node) Running() bool { return nd.server() != nil }

// Stop shuts the server down, as if its process ended: its clients and
// routes are cut, and what its memory streams held is gone. It does nothing
// if the server is stopped.
func (nd *Node) Stop() {
	nd.mu.Lock()
	s := nd.srv
	nd.srv = nil
	nd.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Start starts a stopped server again, on its ports and with its store
// directory, and waits until it is ready for connections (not until it
// has caught up with JetStream: see Cluster.WaitReady).
func (nd *Node) Start() {
	nd.c.tb.Helper()
	if err := nd.start(true); err != nil {
		nd.c.tb.Fatalf("natstest: restarting %s: %v", nd.name, err)
	}
}

// start starts the server, with JetStream or without.
func (nd *Node) start(jetStream bool) error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.srv != nil {
		return nil
	}
	var routes []*url.URL
	for _, other := range nd.c.nodes {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: "127.0.0.1:" + strconv.Itoa(other.routePort)})
	}
	opts := &server.Options{
		ServerName:         nd.name,
		Host:               "127.0.0.1",
		Port:               nd.clientPort,
		NoLog:              true,
		NoSigs:             true,
		JetStream:          jetStream,
		JetStreamMaxMemory: maxMemory,
		JetStreamMaxStore:  maxStore,
		StoreDir:           nd.storeDir,
		Cluster: server.ClusterOpts{
			Name: nd.c.name,
			Host: "127.0.0.1",
			Port: nd.routePort,
		},
		Routes: routes,
	}
	if len(nd.c.nodes) == 1 {
		opts.Cluster, opts.Routes = server.ClusterOpts{}, nil
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	s.Start()
	if !s.ReadyForConnections(Timeout) {
		s.Shutdown()
		s.WaitForShutdown()
		return fmt.Errorf("server %s is not ready for connections after %v (a port taken?)", nd.name, Timeout)
	}
	nd.srv = s
	return nil
}

// JetStream's limits on each server.
const (
	maxMemory = 2 << 30
	maxStore  = 1 << 30
)

// enableJetStream starts JetStream on a server started without it.
func (nd *Node) enableJetStream() error {
	s := nd.server()
	if s == nil {
		return fmt.Errorf("server %s is stopped", nd.name)
	}
	return s.EnableJetStream(&server.JetStreamConfig{MaxMemory: maxMemory, MaxStore: maxStore, StoreDir: nd.storeDir})
}

// poll calls f until it returns nil or d has passed, and returns its last
// error then.
func poll(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("natstest: after %v: %w", d, err)
		}
		<-tick.C
	}
}
