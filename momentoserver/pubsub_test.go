package momentoserver_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/access"
	"github.com/ringbus/topics/momentoserver"
	"github.com/ringbus/topics/momentoserver/internal/wire"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Items arrive in order, numbered from 1 on one page, text as text and
// binary as binary, stamped with the publishing token's ID.
func TestPublishSubscribe(t *testing.T) {
	h := startServer(t, harnessConfig{})
	h.cache("chat")
	pub := h.client(h.token("ada", grant(access.PublishOnly, "chat", access.TopicPrefix("room/"))))
	sub := h.client(h.token("bob", grant(access.SubscribeOnly, "chat", access.TopicName("room/1"))))
	ctx := context.Background()

	r := subscribe(t, sub, &wire.SubscriptionRequest{CacheName: "chat", Topic: "room/1"})
	values := []topics.Value{text("hello"), topics.BytesValue([]byte{0, 1, 2, 0xff}), text(""), topics.BytesValue(nil), text("ünïcödé")}
	for _, v := range values {
		require.NoError(t, pub.Publish(ctx, "chat", "room/1", v))
	}
	var page uint64
	for i, want := range values {
		it := r.item()
		require.Equal(t, uint64(i+1), it.TopicSequenceNumber)
		require.Equal(t, "ada", it.PublisherID)
		require.Equal(t, want.IsText(), it.Value.IsText(), "item %d: text or binary", i+1)
		require.Equal(t, want.String(), it.Value.String())
		if i == 0 {
			page = it.SequencePage
			require.NotZero(t, page)
			require.LessOrEqual(t, page, uint64(topics.MaxPage), "pages fit in 53 bits")
		}
		require.Equal(t, page, it.SequencePage, "one page")
	}
}

func TestLocalModeAcceptsAnyToken(t *testing.T) {
	h := startServer(t, harnessConfig{local: true})
	ctx := context.Background()
	for _, token := range []string{"", "anything at all"} {
		c := h.client(token)
		name := fmt.Sprintf("cache-%d", len(token))
		require.NoError(t, c.CreateCache(ctx, name))
		r := subscribe(t, c, &wire.SubscriptionRequest{CacheName: name, Topic: "t"})
		require.NoError(t, c.Publish(ctx, name, "t", text("hi")))
		it := r.item()
		require.Equal(t, uint64(1), it.TopicSequenceNumber)
		require.Equal(t, "", it.PublisherID, "local mode publishes anonymously")
	}
}

func TestPublishErrors(t *testing.T) {
	h := startServer(t, harnessConfig{})
	h.cache("chat")
	ctx := context.Background()
	c := h.client(h.token("ada", grant(access.PublishSubscribe, "chat", access.TopicPrefix("room/"))))

	requireCode(t, codes.PermissionDenied, c.Publish(ctx, "chat", "lobby", text("x")))
	requireCode(t, codes.PermissionDenied, c.Publish(ctx, "other", "room/1", text("x")))
	requireCode(t, codes.InvalidArgument, c.Publish(ctx, "chat", "room/ bad", text("x")))
	requireCode(t, codes.Unauthenticated, h.client("").Publish(ctx, "chat", "room/1", text("x")))
	requireCode(t, codes.Unauthenticated, h.client("forged").Publish(ctx, "chat", "room/1", text("x")))
	requireCode(t, codes.PermissionDenied, subscribeErr(t, c, &wire.SubscriptionRequest{CacheName: "chat", Topic: "lobby"}))
	requireCode(t, codes.Unauthenticated, subscribeErr(t, h.client(""), &wire.SubscriptionRequest{CacheName: "chat", Topic: "room/1"}))

	all := h.client(h.token("root", admin))
	requireCode(t, codes.NotFound, all.Publish(ctx, "missing", "t", text("x")))
	requireCode(t, codes.NotFound, subscribeErr(t, all, &wire.SubscriptionRequest{CacheName: "missing", Topic: "t"}))
}

func TestPublishWithoutValue(t *testing.T) {
	h := startServer(t, harnessConfig{local: true})
	h.cache("c")
	req := wire.PublishRequest{CacheName: "c", Topic: "t"}
	err := h.cc.Invoke(context.Background(), wire.PublishMethod, &req, &wire.Empty{}, grpc.ForceCodecV2(wire.Codec{}))
	requireCode(t, codes.InvalidArgument, err)
}

// A subscriber that falls a whole ring behind gets discontinuities whose
// numbers account exactly for what it lost. The client reads nothing until
// everything is published; its small flow-control window stops the server's
// sends, and the topic, which keeps 16 items, moves on.
func TestSlowSubscriberDiscontinuity(t *testing.T) {
	h := startServer(t, harnessConfig{local: true})
	c := h.cache("slow", topics.WithRingSize(16))
	cc := h.dial(grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	r := subscribe(t, wire.NewClient(cc, ""), &wire.SubscriptionRequest{CacheName: "slow", Topic: "t"})
	const n = 400
	payload := make([]byte, 4<<10)
	for range n {
		require.NoError(t, c.Publish(context.Background(), "t", payload))
	}

	var prev, lost, received, gaps uint64
	expect := uint64(1)
	for prev < n {
		m := r.next()
		switch m.Kind {
		case wire.KindDiscontinuity:
			d := m.Discontinuity
			require.Equal(t, prev, d.LastTopicSequence, "a discontinuity starts at the last item received")
			require.Greater(t, d.NewTopicSequence, d.LastTopicSequence)
			lost += d.NewTopicSequence - d.LastTopicSequence
			expect = d.NewTopicSequence + 1
			gaps++
		case wire.KindItem:
			require.Equal(t, expect, m.Item.TopicSequenceNumber)
			require.Len(t, m.Item.Value.Bytes(), len(payload))
			prev, expect = m.Item.TopicSequenceNumber, m.Item.TopicSequenceNumber+1
			received++
		}
	}
	require.NotZero(t, gaps)
	require.Equal(t, uint64(n), received+lost, "received %d, lost %d", received, lost)
}

// resumeSetup publishes n items to topic t of a cache keeping ring items,
// reads them on a stream, and returns the page.
func resumeSetup(t *testing.T, h *harness, ring, n int) uint64 {
	t.Helper()
	c := h.cache("c", topics.WithRingSize(ring))
	for i := 1; i <= n; i++ {
		require.NoError(t, c.PublishString(context.Background(), "t", fmt.Sprint(i)))
	}
	st, _ := c.TopicStats("t")
	require.Equal(t, uint64(n), st.Published)
	return st.Page
}

// readItems reads n items, which must be first, first+1, ... of page,
// without discontinuities.
func readItems(t *testing.T, r *receiver, page, first uint64, n int) {
	t.Helper()
	for i := range uint64(n) {
		it := r.item()
		require.Equal(t, first+i, it.TopicSequenceNumber)
		require.Equal(t, fmt.Sprint(first+i), it.Value.String())
		require.Equal(t, page, it.SequencePage)
	}
}

// resume_at_topic_sequence_number is the first item wanted, as the protocol
// says and the Node.js SDK sends it (the item after the last it received).
func TestResumeAtFirstWanted(t *testing.T) {
	h := startServer(t, harnessConfig{local: true})
	page := resumeSetup(t, h, 64, 10)
	r := subscribe(t, h.client(""), &wire.SubscriptionRequest{CacheName: "c", Topic: "t", ResumeAtTopicSequenceNumber: 6, SequencePage: page})
	readItems(t, r, page, 6, 5)
}

// The Momento Go SDK resumes at the last item it received: a gRPC-Go client
// that sends the cache in a "cache" header, as that SDK does, gets the items
// after it, and nothing twice.
func TestResumeAtLastReceivedForGoSDK(t *testing.T) {
	h := startServer(t, harnessConfig{local: true})
	page := resumeSetup(t, h, 64, 10)
	goSDK := h.client("").WithHeader("cache", "c")
	r := subscribe(t, goSDK, &wire.SubscriptionRequest{CacheName: "c", Topic: "t", ResumeAtTopicSequenceNumber: 5, SequencePage: page})
	readItems(t, r, page, 6, 5)
	// Its first subscription (0, 0) starts after the newest item, as anyone's.
	r = subscribe(t, goSDK, &wire.SubscriptionRequest{CacheName: "c", Topic: "t"})
	require.NoError(t, h.client("").Publish(context.Background(), "c", "t", text("11")))
	readItems(t, r, page, 11, 1)
}

// A request without a page resumes on the topic's current page.
func TestResumeWithoutPage(t *testing.T) {
	h := startServer(t, harnessConfig{local: true})
	page := resumeSetup(t, h, 64, 10)
	r := subscribe(t, h.client(""), &wire.SubscriptionRequest{CacheName: "c", Topic: "t", ResumeAtTopicSequenceNumber: 3})
	readItems(t, r, page, 3, 8)
}

// Resuming at an item the topic no longer holds starts at the oldest it
// holds, after a discontinuity that says exactly what was lost. Resuming on
// a page the topic is no longer on (it was dropped and made again, or the
// server restarted) is a discontinuity to the new page, from the last item
// known on the old one.
func TestResumeDiscontinuity(t *testing.T) {
	for _, tc := range []struct {
		name         string
		ring         int
		resume       uint64
		otherPage    bool
		last, newSeq uint64 // the discontinuity
	}{
		{name: "lapped", ring: 8, resume: 3, last: 2, newSeq: 12},                      // holds 13..20
		{name: "other page", ring: 8, resume: 7, otherPage: true, last: 6, newSeq: 12}, // holds 13..20 of the new page
		{name: "other page, all held", ring: 64, resume: 7, otherPage: true, last: 6, newSeq: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startServer(t, harnessConfig{local: true})
			page := resumeSetup(t, h, tc.ring, 20)
			askPage := page
			if tc.otherPage {
				askPage = page - 1
			}
			r := subscribe(t, h.client(""), &wire.SubscriptionRequest{CacheName: "c", Topic: "t", ResumeAtTopicSequenceNumber: tc.resume, SequencePage: askPage})
			m := r.next()
			require.Equal(t, wire.KindDiscontinuity, m.Kind)
			require.Equal(t, wire.Discontinuity{LastTopicSequence: tc.last, NewTopicSequence: tc.newSeq, NewSequencePage: page}, m.Discontinuity)
			readItems(t, r, page, tc.newSeq+1, int(20-tc.newSeq))
		})
	}
}

// A stream that breaks and resumes where it was loses nothing and repeats
// nothing.
func TestReconnectResumes(t *testing.T) {
	h := startServer(t, harnessConfig{local: true})
	h.cache("c")
	c := h.client("")
	ctx := context.Background()
	streamCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	r := subscribeCtx(t, streamCtx, c, &wire.SubscriptionRequest{CacheName: "c", Topic: "t"})
	for i := 1; i <= 5; i++ {
		require.NoError(t, c.Publish(ctx, "c", "t", text(fmt.Sprint(i))))
	}
	var last wire.TopicItem
	for range 5 {
		last = r.item()
	}
	cancel()
	for i := 6; i <= 10; i++ {
		require.NoError(t, c.Publish(ctx, "c", "t", text(fmt.Sprint(i))))
	}
	r = subscribe(t, c, &wire.SubscriptionRequest{CacheName: "c", Topic: "t", ResumeAtTopicSequenceNumber: last.TopicSequenceNumber + 1, SequencePage: last.SequencePage})
	readItems(t, r, last.SequencePage, 6, 5)
}

func TestDeletedCacheEndsStreamsNotFound(t *testing.T) {
	h := startServer(t, harnessConfig{local: true})
	h.cache("c")
	r := subscribe(t, h.client(""), &wire.SubscriptionRequest{CacheName: "c", Topic: "t"})
	require.NoError(t, h.client("").DeleteCache(context.Background(), "c"))
	requireCode(t, codes.NotFound, r.end())
}

func TestExpiredTokenEndsStreamUnauthenticated(t *testing.T) {
	h := startServer(t, harnessConfig{})
	h.cache("c")
	tok, err := h.auth.Mint(access.Token{ID: "brief", Expires: time.Now().Add(300 * time.Millisecond), Permissions: []access.Permission{admin}})
	require.NoError(t, err)
	r := subscribe(t, h.client(tok), &wire.SubscriptionRequest{CacheName: "c", Topic: "t"})
	requireCode(t, codes.Unauthenticated, r.end())
}

// A quiet stream gets a heartbeat every interval.
func TestHeartbeatsOnQuietStream(t *testing.T) {
	h := startServer(t, harnessConfig{local: true, serverOpts: []momentoserver.Option{momentoserver.WithHeartbeat(10 * time.Millisecond)}})
	h.cache("c")
	r := subscribe(t, h.client(""), &wire.SubscriptionRequest{CacheName: "c", Topic: "t"})
	for range 3 {
		m, err := r.recv()
		require.NoError(t, err)
		require.Equal(t, wire.KindHeartbeat, m.Kind)
	}
}

// A stream whose call has a deadline ends a little before it, with
// DEADLINE_EXCEEDED from the server: gRPC-Go would otherwise reset it at the
// deadline, which the Node.js SDK reads as CANCELLED and does not retry.
func TestStreamEndsBeforeItsDeadline(t *testing.T) {
	h := startServer(t, harnessConfig{local: true})
	h.cache("c")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := h.client("").Subscribe(ctx, &wire.SubscriptionRequest{CacheName: "c", Topic: "t"})
	require.NoError(t, err)
	err = (&receiver{t: t, st: st}).end()
	requireCode(t, codes.DeadlineExceeded, err)
	require.Contains(t, status.Convert(err).Message(), "deadline is near", "the server's status, not the client's own deadline")
}

// Limits are RESOURCE_EXHAUSTED, with the "err" trailer the SDKs read to
// say which.
func TestLimits(t *testing.T) {
	h := startServer(t, harnessConfig{local: true})
	h.cache("rated", topics.WithPublishRate(1, 1))
	h.cache("small", topics.WithMaxValueSize(4))
	h.cache("few", topics.WithMaxSubscribers(1))
	c := h.client("")
	ctx := context.Background()

	publish := func(cache string, v topics.Value) (metadata.MD, error) {
		var md metadata.MD
		err := c.Publish(ctx, cache, "t", v, grpc.Trailer(&md))
		return md, err
	}
	_, err := publish("rated", text("1"))
	require.NoError(t, err)
	md, err := publish("rated", text("2"))
	requireCode(t, codes.ResourceExhausted, err)
	require.Equal(t, []string{"operations_rate_limit_exceeded"}, md.Get("err"))

	md, err = publish("small", text("12345"))
	requireCode(t, codes.ResourceExhausted, err)
	require.Equal(t, []string{"request_size_limit_exceeded"}, md.Get("err"))

	subscribe(t, c, &wire.SubscriptionRequest{CacheName: "few", Topic: "t"})
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := c.Subscribe(sctx, &wire.SubscriptionRequest{CacheName: "few", Topic: "t"})
	require.NoError(t, err)
	err = (&receiver{t: t, st: st}).end()
	requireCode(t, codes.ResourceExhausted, err)
	require.Equal(t, []string{"topic_subscriptions_limit_exceeded"}, st.Trailer().Get("err"))
}

// Shutdown ends subscription streams with UNAVAILABLE, which the SDKs
// retry, and the server serves nothing more.
func TestShutdownEndsStreamsUnavailable(t *testing.T) {
	h := startServer(t, harnessConfig{local: true})
	h.cache("c")
	r := subscribe(t, h.client(""), &wire.SubscriptionRequest{CacheName: "c", Topic: "t"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, h.srv.Shutdown(ctx))
	requireCode(t, codes.Unavailable, r.end())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	require.ErrorIs(t, h.srv.Serve(ln), momentoserver.ErrServerClosed)
}

// 1,000 items to 10 subscribers arrive complete and in order.
func TestManySubscribers(t *testing.T) {
	h := startServer(t, harnessConfig{local: true})
	h.cache("c")
	c := h.client("")
	const subs, n = 10, 1000
	rs := make([]*receiver, subs)
	for i := range rs {
		rs[i] = subscribe(t, c, &wire.SubscriptionRequest{CacheName: "c", Topic: "t"})
	}
	for i := 1; i <= n; i++ {
		require.NoError(t, c.Publish(context.Background(), "c", "t", text(fmt.Sprint(i))))
	}
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(func() {
			for i := 1; i <= n; {
				m, err := r.recv()
				switch {
				case err != nil:
					t.Errorf("item %d: %v", i, err)
					return
				case m.Kind == wire.KindHeartbeat:
					continue
				case m.Kind != wire.KindItem || m.Item.TopicSequenceNumber != uint64(i) || m.Item.Value.String() != fmt.Sprint(i):
					t.Errorf("got %+v, want item %d", m, i)
					return
				}
				i++
			}
		})
	}
	wg.Wait()
}

// The cache data plane and the other control calls are not served.
func TestOtherCallsUnimplemented(t *testing.T) {
	h := startServer(t, harnessConfig{local: true})
	for _, method := range []string{"/control_client.ScsControl/FlushCache", "/cache_client.Scs/Get"} {
		err := h.cc.Invoke(context.Background(), method, &wire.CacheRequest{CacheName: "c"}, &wire.Empty{}, grpc.ForceCodecV2(wire.Codec{}))
		requireCode(t, codes.Unimplemented, err)
	}
}
