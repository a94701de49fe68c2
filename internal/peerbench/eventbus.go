package peerbench

import (
	"testing"

	"github.com/asaskevich/EventBus"

	"github.com/ringbus/topics/internal/benchkit"
)

// eventBusSystem is github.com/asaskevich/EventBus. With Subscribe (the
// default) Publish calls every subscriber's callback itself, one after the
// other. With SubscribeAsync(…, transactional=true) each call runs in a new
// goroutine, one at a time per subscriber: Publish waits for a subscriber's
// previous call to end before starting the next.
type eventBusSystem struct {
	tb    testing.TB
	bus   EventBus.Bus
	async bool
}

func newEventBus(async bool) func(testing.TB) benchkit.System {
	return func(tb testing.TB) benchkit.System {
		return &eventBusSystem{tb: tb, bus: EventBus.New(), async: async}
	}
}

func (s *eventBusSystem) Publish() { s.bus.Publish(topic, benchkit.Payload) }

func (s *eventBusSystem) Drain(sink *benchkit.Sink) {
	fn := func([]byte) { sink.Deliver(0) }
	var err error
	if s.async {
		err = s.bus.SubscribeAsync(topic, fn, true)
	} else {
		err = s.bus.Subscribe(topic, fn)
	}
	if err != nil {
		s.tb.Fatal(err)
	}
}

func (s *eventBusSystem) Stall() {
	panic("EventBus: a stalled subscriber would block the publisher")
}

func (s *eventBusSystem) Close() { s.bus.WaitAsync() }
