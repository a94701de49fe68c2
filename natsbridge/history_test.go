package natsbridge_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics/internal/history"
	"github.com/ringbus/topics/natsbridge/internal/natstest"
)

// TestHistoryAcrossProcesses: publishers and subscribers on three
// processes, one per server, on two topics. Every subscriber sees every
// item of its topic once, in one order shared by all, with nothing lost
// (each ring holds the whole run), and each publisher's items in its order.
func TestHistoryAcrossProcesses(t *testing.T) {
	const (
		perProcess = 2   // publishers and subscribers, per process and topic
		each       = 150 // publishes of each publisher
		payload    = 40
	)
	topicNames := []string{"a", "b/c:d"}
	total := 3 * perProcess * each // items of each topic
	c := natstest.NewCluster(t, 3)
	rec := history.NewRecorder(0)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	var procs []*process
	for i := range 3 {
		procs = append(procs, newProcess(t, c, i))
	}
	var readers, publishers errGroup
	for i, p := range procs {
		cache := p.cache(t, "h")
		for _, topic := range topicNames {
			for j := range perProcess {
				s, err := rec.Subscribe(ctx, cache, topic, fmt.Sprintf("p%d/%s/%d", i, topic, j), true, true)
				require.NoError(t, err)
				readers.run(func() error {
					defer s.Close()
					return s.ReadUntil(ctx, uint64(total))
				})
			}
		}
	}
	for _, p := range procs {
		cache := p.cache(t, "h")
		for _, topic := range topicNames {
			for range perProcess {
				pr := rec.Publisher()
				publishers.run(func() error {
					for range each {
						if err := pr.Publish(ctx, cache, topic, payload); err != nil {
							return err
						}
					}
					return nil
				})
			}
		}
	}
	require.NoError(t, publishers.wait())
	require.NoError(t, readers.wait())
	history.Require(t, rec.History())
}

// errGroup runs goroutines and joins their errors.
type errGroup struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func (g *errGroup) run(f func() error) {
	g.wg.Go(func() {
		if err := f(); err != nil {
			g.mu.Lock()
			g.errs = append(g.errs, err)
			g.mu.Unlock()
		}
	})
}

func (g *errGroup) wait() error {
	g.wg.Wait()
	return errors.Join(g.errs...)
}
