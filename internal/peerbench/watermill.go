package peerbench

import (
	"context"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/ringbus/topics/internal/benchkit"
)

// watermillRebuild bounds the goroutines that pile up behind a subscriber
// that does not keep up with a publisher in a tight loop: each publish
// leaves a goroutine per subscriber until the message is taken and acked.
const watermillRebuild = 1024

// watermillSystem is watermill's GoChannel pub/sub with its default
// configuration (not persistent, unbuffered output channels, Publish not
// waiting for acks) and no logging. A message is made as watermill's
// documentation shows, with a fresh UUID, and a subscriber acks each message
// it takes.
type watermillSystem struct {
	tb     testing.TB
	ps     *gochannel.GoChannel
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newWatermill(tb testing.TB) benchkit.System {
	ctx, cancel := context.WithCancel(context.Background())
	return &watermillSystem{
		tb:     tb,
		ps:     gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{}),
		ctx:    ctx,
		cancel: cancel,
	}
}

func (s *watermillSystem) Publish() {
	if err := s.ps.Publish(topic, message.NewMessage(watermill.NewUUID(), benchkit.Payload)); err != nil {
		s.tb.Fatal(err)
	}
}

func (s *watermillSystem) Drain(sink *benchkit.Sink) {
	ch, err := s.ps.Subscribe(s.ctx, topic)
	if err != nil {
		s.tb.Fatal(err)
	}
	s.wg.Go(func() {
		for m := range ch {
			sink.Deliver(0)
			m.Ack()
		}
	})
}

func (s *watermillSystem) Stall() {
	if _, err := s.ps.Subscribe(s.ctx, topic); err != nil {
		s.tb.Fatal(err)
	}
}

func (s *watermillSystem) Close() {
	s.cancel()
	_ = s.ps.Close() // closes every subscriber's channel
	s.wg.Wait()
}
