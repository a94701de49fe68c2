package natstest

// What natsbridge relies on JetStream for, checked on the servers of this
// module's go.mod: a newer nats-server that behaves otherwise fails here
// first.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testStream(name string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: name, Subjects: []string{"p.i." + name, "p.m." + name + ".*"},
		Storage: jetstream.MemoryStorage, Replicas: 1, MaxMsgsPerSubject: 4, AllowDirect: true,
		RePublish: &jetstream.RePublish{Source: "p.i." + name, Destination: "p.o." + name},
	}
}

func jsError(err error) jetstream.ErrorCode {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.ErrorCode
	}
	return 0
}

// Conditional publishes: an item names the marker it expects; the marker
// only goes into an empty stream; what is stored is republished with its
// headers and sequence; a batch of direct gets ends with a 204.
func TestJetStreamConditionsAndRepublish(t *testing.T) {
	c := NewCluster(t, 1)
	nc := c.Connect(0)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := t.Context()
	cfg := testStream("S")
	_, err = js.CreateStream(ctx, cfg)
	require.NoError(t, err)
	_, err = js.CreateStream(ctx, cfg)
	require.NoError(t, err, "creating the same stream again succeeds")
	other := cfg
	other.Metadata = map[string]string{"k": "v"}
	_, err = js.CreateStream(ctx, other)
	require.ErrorIs(t, err, jetstream.ErrStreamNameAlreadyInUse, "another configuration is refused")

	out, err := nc.SubscribeSync("p.o.S")
	require.NoError(t, err)
	expect := jetstream.WithExpectLastSequenceForSubject(1, "p.m.S.100")
	_, err = js.Publish(ctx, "p.i.S", []byte("early"), expect)
	assert.Equal(t, jetstream.ErrorCode(10071), jsError(err), "no marker: refused")
	_, err = js.Publish(ctx, "p.m.S.100", nil, jetstream.WithExpectLastSequence(0))
	require.NoError(t, err)
	_, err = js.Publish(ctx, "p.m.S.101", nil, jetstream.WithExpectLastSequence(0))
	assert.Equal(t, jetstream.ErrorCode(10071), jsError(err), "a second marker: refused")
	for _, v := range []string{"a", "b", "c", "d", "e", "f"} {
		m := nats.NewMsg("p.i.S")
		m.Data = []byte(v)
		m.Header.Set("Topics-Publisher", "ada")
		ack, err := js.PublishMsg(ctx, m, expect)
		require.NoError(t, err)
		assert.Equal(t, "S", ack.Stream)
	}
	m, err := out.NextMsg(time.Second)
	require.NoError(t, err)
	assert.Equal(t, "a", string(m.Data))
	assert.Equal(t, "2", m.Header.Get("Nats-Sequence"))
	assert.Equal(t, "p.m.S.100", m.Header.Get("Nats-Expected-Last-Subject-Sequence-Subject"))
	assert.Equal(t, "ada", m.Header.Get("Topics-Publisher"))

	inbox := nats.NewInbox()
	batch, err := nc.SubscribeSync(inbox)
	require.NoError(t, err)
	require.NoError(t, nc.PublishRequest("$JS.API.DIRECT.GET.S", inbox, []byte(`{"seq":2,"next_by_subj":"p.i.S","batch":100}`)))
	var got []string
	for {
		m, err := batch.NextMsg(time.Second)
		require.NoError(t, err)
		if m.Header.Get("Status") == "204" {
			break
		}
		got = append(got, string(m.Data))
	}
	assert.Equal(t, []string{"c", "d", "e", "f"}, got, "the last four, as MaxMsgsPerSubject keeps")
	stream, err := js.Stream(ctx, "S")
	require.NoError(t, err)
	marker, err := stream.GetMsg(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, "p.m.S.100", marker.Subject, "the marker outlives the items")
}

// A memory stream whose only server restarts comes back empty, with its
// configuration, and numbers from 1 again; while the server is down,
// publishing finds no responder and the stream is reported offline; an
// offline stream can be deleted and made again on another server, and the
// old server, back, keeps the new one.
func TestJetStreamServerLoss(t *testing.T) {
	c := NewCluster(t, 3)
	ctx := t.Context()
	nc := c.Connect(0)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	leaderOf := func(name string) *Node {
		s, err := js.Stream(ctx, name)
		require.NoError(t, err)
		for _, nd := range c.Nodes() {
			if nd.Name() == s.CachedInfo().Cluster.Leader {
				return nd
			}
		}
		t.Fatalf("no leader for %s", name)
		return nil
	}
	clientOn := func(avoid *Node) jetstream.JetStream {
		for i, nd := range c.Nodes() {
			if nd != avoid {
				js, err := jetstream.New(c.Connect(i))
				require.NoError(t, err)
				return js
			}
		}
		return nil
	}

	// Restarted: empty, same configuration.
	_, err = js.CreateStream(ctx, testStream("R"))
	require.NoError(t, err)
	for range 3 {
		_, err = js.Publish(ctx, "p.i.R", nil)
		require.NoError(t, err)
	}
	victim := leaderOf("R")
	js2 := clientOn(victim)
	victim.Stop()
	// Once the other servers have seen the victim go (a publish already on
	// its way to it gets no answer at all), nothing answers.
	require.NoError(t, poll(Timeout, func() error {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := js2.Publish(pctx, "p.i.R", nil, jetstream.WithRetryAttempts(0))
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			return nil
		}
		return fmt.Errorf("publishing: %v, want no responders", err)
	}))
	_, err = js2.Stream(ctx, "R")
	assert.Equal(t, jetstream.ErrorCode(10118), jsError(err), "offline: %v", err)
	victim.Start()
	require.NoError(t, c.WaitReady())
	var ack *jetstream.PubAck
	require.NoError(t, poll(Timeout, func() error {
		ack, err = js2.Publish(ctx, "p.i.R", nil, jetstream.WithRetryAttempts(0))
		return err
	}))
	assert.Equal(t, uint64(1), ack.Sequence, "the restarted memory stream numbers from 1 again")

	// Deleted while offline, made again elsewhere.
	_, err = js.CreateStream(ctx, testStream("D"))
	require.NoError(t, err)
	victim = leaderOf("D")
	js2 = clientOn(victim)
	victim.Stop()
	require.NoError(t, poll(Timeout, func() error {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := js2.DeleteStream(dctx, "D"); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return err // no meta leader yet, if the victim was it
		}
		_, err := js2.Stream(dctx, "D")
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return errors.New("not deleted yet")
		}
		return nil
	}))
	s, err := js2.CreateStream(ctx, testStream("D"))
	require.NoError(t, err)
	assert.NotEqual(t, victim.Name(), s.CachedInfo().Cluster.Leader)
	_, err = js2.Publish(ctx, "p.i.D", nil)
	require.NoError(t, err)
	victim.Start()
	require.NoError(t, c.WaitReady())
	info, err := s.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), info.State.Msgs, "the old server did not bring the old stream back")
}
