package topics

import (
	"context"
	"fmt"
	"log/slog"
)

// Logging: the records are listed in the package doc ("Logging").
//
// Whether a subscription is in a loss episode is tracked by its reading
// goroutine alone, on the item that reports the loss and on the following
// ones until it catches up; a subscription that keeps up pays one
// predictable branch per item, and nothing allocates unless a record is
// logged.

// WithLogger makes caches log to l (see the package doc, "Logging"). Given to
// New, it is the logger of every cache of the engine. A nil l, the default,
// logs nothing and costs nothing.
func WithLogger(l *slog.Logger) Option {
	return cacheOption(func(c *cacheConfig) error {
		c.logger = l
		return nil
	})
}

// lossStarted notes items lost just before item sequence of page, and logs
// the start of an episode. Only the reading goroutine calls it, and only with
// a logger.
func (s *Subscription[T]) lossStarted(page, sequence, missed uint64) {
	st := s.opt // allocated for every subscription of a cache with a logger
	if s.hot.lossy {
		st.episodeLoss += missed
		return
	}
	s.hot.lossy, st.episodeLoss = true, missed
	s.logEpisode(slog.LevelWarn, "topics: subscriber is missing items", page, sequence, slog.Uint64("missed", missed))
}

// caughtUp ends a loss episode: the subscription has read item sequence of
// page, the newest of its topic.
func (s *Subscription[T]) caughtUp(page, sequence uint64) {
	st := s.opt
	s.hot.lossy = false
	s.logEpisode(slog.LevelInfo, "topics: subscriber caught up", page, sequence, slog.Uint64("missed_episode", st.episodeLoss))
}

// logEpisode logs a record of a loss episode at item sequence of page: the
// attributes every such record has, with count (what the record is about)
// before missed_total.
func (s *Subscription[T]) logEpisode(level slog.Level, msg string, page, sequence uint64, count slog.Attr) {
	t := s.topic
	t.cache.cfg.logger.LogAttrs(context.Background(), level, msg,
		slog.String("cache", t.cache.name),
		slog.String("topic", t.name),
		slog.Uint64("page", page),
		slog.Uint64("sequence", sequence),
		count,
		slog.Uint64("missed_total", s.hot.m),
	)
}

// logHandlerFailure logs that a handler's function failed on an item, and
// whether the handler ended for it.
func (c *Cache) logHandlerFailure(err error, ended bool, topic string, page, seq uint64) {
	l := c.cfg.logger
	if l == nil {
		return
	}
	attrs := []slog.Attr{
		slog.String("cache", c.name),
		slog.String("topic", topic),
		slog.Uint64("page", page),
		slog.Uint64("sequence", seq),
	}
	msg := "topics: handler failed on an item, and goes on"
	if ended {
		msg = "topics: handler failed"
	}
	if pe, ok := err.(*PanicError); ok {
		msg = "topics: handler panicked"
		attrs = append(attrs, slog.String("panic", fmt.Sprint(pe.Value)), slog.String("stack", string(pe.Stack)))
	} else {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	l.LogAttrs(context.Background(), slog.LevelError, msg, attrs...)
}

// logHeldBack logs the start of an episode of publishes that gave up
// waiting for n lossless readers of a topic.
func (c *Cache) logHeldBack(topic string, page uint64, n int, err error) {
	if l := c.cfg.logger; l != nil {
		l.LogAttrs(context.Background(), slog.LevelWarn, "topics: publisher held back by lossless subscribers",
			slog.String("cache", c.name),
			slog.String("topic", topic),
			slog.Uint64("page", page),
			slog.Int("lossless_behind", n),
			slog.String("error", err.Error()),
		)
	}
}
