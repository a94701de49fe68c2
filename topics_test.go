package topics_test

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringbus/topics"
)

func TestEngineCreateCacheDuplicate(t *testing.T) {
	e := topics.New()
	defer e.Close()
	c, err := e.CreateCache("dup")
	require.NoError(t, err)
	s := subscribe(t, c, "t")

	again, err := e.CreateCache("dup")
	require.ErrorIs(t, err, topics.ErrCacheExists)
	assert.Contains(t, err.Error(), "dup")
	assert.Nil(t, again)

	// The existing cache is untouched.
	got, err := e.Cache("dup")
	require.NoError(t, err)
	assert.Same(t, c, got)
	publish(t, c, "t", "still here")
	assert.Equal(t, "still here", next(t, s).Value.String())
	assert.Equal(t, []string{"dup"}, e.ListCaches())
}

func TestEngineCacheNotFound(t *testing.T) {
	e := topics.New()
	defer e.Close()
	c, err := e.Cache("missing")
	require.ErrorIs(t, err, topics.ErrCacheNotFound)
	assert.Nil(t, c)
	require.ErrorIs(t, e.DeleteCache("missing"), topics.ErrCacheNotFound)

	_, err = e.CreateCache("present")
	require.NoError(t, err)
	_, err = e.Cache("Present")
	require.ErrorIs(t, err, topics.ErrCacheNotFound, "names are case-sensitive")
}

func TestEngineListCachesSorted(t *testing.T) {
	e := topics.New()
	defer e.Close()
	assert.Empty(t, e.ListCaches())
	for _, name := range []string{"b", "a.1", "C", "_x", "a", "-", "10", "9", "ab"} {
		_, err := e.CreateCache(name)
		require.NoError(t, err)
	}
	assert.Equal(t, []string{"-", "10", "9", "C", "_x", "a", "a.1", "ab", "b"}, e.ListCaches())

	require.NoError(t, e.DeleteCache("a"))
	assert.Equal(t, []string{"-", "10", "9", "C", "_x", "a.1", "ab", "b"}, e.ListCaches())

	// The list is a copy.
	l := e.ListCaches()
	l[0] = "zzz"
	assert.Equal(t, "-", e.ListCaches()[0])
}

func TestEngineDeleteCache(t *testing.T) {
	ctx := context.Background()
	e := topics.New()
	defer e.Close()
	old, err := e.CreateCache("c")
	require.NoError(t, err)
	oldSub := subscribe(t, old, "t")
	h, err := topics.TopicOf[int](old, "typed")
	require.NoError(t, err)

	require.NoError(t, e.DeleteCache("c"))
	assert.Empty(t, e.ListCaches())
	_, err = e.Cache("c")
	require.ErrorIs(t, err, topics.ErrCacheNotFound)
	require.ErrorIs(t, e.DeleteCache("c"), topics.ErrCacheNotFound, "deleting twice")

	// Every operation on the deleted cache says so.
	requireCacheRefuses(t, old, topics.ErrCacheNotFound)
	require.ErrorIs(t, h.Publish(ctx, 1), topics.ErrCacheNotFound)
	si, err := h.Subscribe(ctx)
	require.ErrorIs(t, err, topics.ErrCacheNotFound)
	assert.Nil(t, si)
	require.ErrorIs(t, nextErr(t, oldSub), topics.ErrCacheNotFound)
	require.NoError(t, old.Close(), "closing a deleted cache")
	assert.Equal(t, "c", old.Name())

	// The name can be used again at once, for a new and independent cache.
	fresh, err := e.CreateCache("c")
	require.NoError(t, err)
	assert.NotSame(t, old, fresh)
	got, err := e.Cache("c")
	require.NoError(t, err)
	assert.Same(t, fresh, got)
	assert.Equal(t, []string{"c"}, e.ListCaches())
	s2 := subscribe(t, fresh, "t")
	publish(t, fresh, "t", "new")
	it := next(t, s2)
	assert.Equal(t, "new", it.Value.String())
	assert.Equal(t, uint64(1), it.Sequence, "the new cache's topic starts afresh")
	require.ErrorIs(t, nextErr(t, oldSub), topics.ErrCacheNotFound, "the old subscription stays ended")
}

func TestEngineCacheCloseRemovesIt(t *testing.T) {
	e := topics.New()
	defer e.Close()
	c, err := e.CreateCache("c")
	require.NoError(t, err)
	_, err = e.CreateCache("d")
	require.NoError(t, err)
	require.NoError(t, c.Close())
	assert.Equal(t, []string{"d"}, e.ListCaches())
	_, err = e.Cache("c")
	require.ErrorIs(t, err, topics.ErrCacheNotFound)
	c2, err := e.CreateCache("c")
	require.NoError(t, err)
	assert.NotSame(t, c, c2)
	require.ErrorIs(t, c.PublishString(context.Background(), "t", "x"), topics.ErrClosed)
	require.NoError(t, c2.PublishString(context.Background(), "t", "x"))
}

func TestEngineClose(t *testing.T) {
	ctx := context.Background()
	e := topics.New()
	c, err := e.CreateCache("c")
	require.NoError(t, err)
	s := subscribe(t, c, "t")

	require.NoError(t, e.Close())
	require.NoError(t, e.Close(), "Close is idempotent")
	require.NoError(t, e.Close())

	assert.Empty(t, e.ListCaches())
	_, err = e.CreateCache("new")
	require.ErrorIs(t, err, topics.ErrClosed)
	_, err = e.Cache("c")
	require.ErrorIs(t, err, topics.ErrClosed)
	require.ErrorIs(t, e.DeleteCache("c"), topics.ErrClosed)

	require.ErrorIs(t, c.PublishString(ctx, "t", "x"), topics.ErrClosed)
	_, err = c.Subscribe(ctx, "t")
	require.ErrorIs(t, err, topics.ErrClosed)
	require.ErrorIs(t, nextErr(t, s), topics.ErrClosed)
	require.NoError(t, c.Close(), "closing a cache of a closed engine")
}

func TestCloseIdempotent(t *testing.T) {
	c, err := topics.NewCache("c")
	require.NoError(t, err)
	s, err := c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	for range 3 {
		require.NoError(t, s.Close())
	}
	requireEnded(t, nextErr(t, s), []error{topics.ErrClosed})
	s2, err := c.Subscribe(context.Background(), "t")
	require.NoError(t, err)
	for range 3 {
		require.NoError(t, c.Close())
	}
	requireEnded(t, nextErr(t, s2), []error{topics.ErrClosed})
	for range 3 {
		require.NoError(t, s2.Close(), "closing a subscription of a closed cache")
	}

	e := topics.New()
	ec, err := e.CreateCache("c")
	require.NoError(t, err)
	for range 3 {
		require.NoError(t, e.Close())
	}
	require.NoError(t, ec.Close())
}

func TestClosedCacheOperations(t *testing.T) {
	ctx := context.Background()
	c, err := topics.NewCache("c")
	require.NoError(t, err)
	hv, err := topics.TopicOf[topics.Value](c, "v")
	require.NoError(t, err)
	hi, err := topics.TopicOf[int](c, "i")
	require.NoError(t, err)
	require.NoError(t, hi.Publish(ctx, 1))
	require.NoError(t, c.Close())

	requireCacheRefuses(t, c, topics.ErrClosed)
	require.ErrorIs(t, hv.Publish(ctx, topics.TextValue("x")), topics.ErrClosed)
	require.ErrorIs(t, hi.Publish(ctx, 2), topics.ErrClosed)
	_, err = hv.Subscribe(ctx)
	require.ErrorIs(t, err, topics.ErrClosed)
	_, err = hi.Subscribe(ctx)
	require.ErrorIs(t, err, topics.ErrClosed)
	assert.Equal(t, "c", c.Name())
}

// requireCacheRefuses requires every call on c that needs a live cache
// (publishing, subscribing, getting a typed handle) to fail with want.
func requireCacheRefuses(t *testing.T, c *topics.Cache, want error) {
	t.Helper()
	ctx := context.Background()
	require.ErrorIs(t, c.Publish(ctx, "t", []byte("x")), want)
	require.ErrorIs(t, c.PublishString(ctx, "t", "x"), want)
	s, err := c.Subscribe(ctx, "t")
	require.ErrorIs(t, err, want)
	assert.Nil(t, s)
	_, err = topics.TopicOf[int](c, "typed")
	require.ErrorIs(t, err, want)
}

// Importing the package has no side effects: it depends on neither expvar,
// whose init registers /debug/vars with net/http's DefaultServeMux, nor
// net/http itself.
func TestImportRegistersNothing(t *testing.T) {
	// go test puts the bin directory of its own GOROOT first on the test's
	// PATH, so this is the go command that built the test.
	out, err := exec.Command("go", "list", "-deps", "github.com/ringbus/topics").CombinedOutput()
	require.NoError(t, err, "%s", out)
	deps := strings.Fields(string(out))
	require.True(t, slices.Contains(deps, "github.com/ringbus/topics"), "go list names the package itself: %s", out)
	for _, banned := range []string{"expvar", "net/http"} {
		assert.False(t, slices.Contains(deps, banned), "package topics depends on %s", banned)
	}
}

// The doc comment of every function of topics.go names exactly the sentinel
// errors that the function returns, in its sentences that say what it
// "returns". Each call below provokes one error of the function named; a
// function of topics.go not listed must name none there.
func TestEngineDocsNameTheirErrors(t *testing.T) {
	sentinels := map[string]error{
		"ErrCacheNotFound": topics.ErrCacheNotFound,
		"ErrCacheExists":   topics.ErrCacheExists,
		"ErrClosed":        topics.ErrClosed,
		"ErrInvalidName":   topics.ErrInvalidName,
		"ErrInvalidOption": topics.ErrInvalidOption,
		"ErrValueTooLarge": topics.ErrValueTooLarge,
		"ErrLimitExceeded": topics.ErrLimitExceeded,
		"ErrTopicType":     topics.ErrTopicType,
	}
	open := func() *topics.Engine {
		e := topics.New()
		t.Cleanup(func() { _ = e.Close() })
		_, err := e.CreateCache("taken")
		require.NoError(t, err)
		return e
	}
	closed := func() *topics.Engine {
		e := open()
		require.NoError(t, e.Close())
		return e
	}
	errOf := func(_ any, err error) error { return err }
	calls := map[string][]error{
		"CreateCache": {
			errOf(open().CreateCache("taken")),
			errOf(open().CreateCache("bad name")),
			errOf(open().CreateCache("c", topics.WithRingSize(3))),
			errOf(topics.New(topics.WithRingSize(3)).CreateCache("c")),
			errOf(closed().CreateCache("c")),
		},
		"Cache": {
			errOf(open().Cache("missing")),
			errOf(open().Cache("bad name")),
			errOf(closed().Cache("taken")),
		},
		"DeleteCache": {
			open().DeleteCache("missing"),
			open().DeleteCache("bad name"),
			closed().DeleteCache("taken"),
		},
	}

	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "topics.go", nil, parser.ParseComments)
	require.NoError(t, err)
	named := regexp.MustCompile(`\bErr[A-Z][A-Za-z]*`)
	sentences := regexp.MustCompile(`\.\s`)
	returns := regexp.MustCompile(`\breturns\b`)
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || !fn.Name.IsExported() {
			continue
		}
		name := fn.Name.Name
		documented := map[string]bool{}
		for _, sentence := range sentences.Split(fn.Doc.Text(), -1) {
			if !returns.MatchString(sentence) {
				continue
			}
			for _, s := range named.FindAllString(sentence, -1) {
				documented[s] = true
			}
		}
		returned := map[string]bool{}
		for _, err := range calls[name] {
			require.Error(t, err, "a call of %s", name)
			n := 0
			for s, sentinel := range sentinels {
				if errors.Is(err, sentinel) {
					returned[s] = true
					n++
				}
			}
			assert.Equal(t, 1, n, "%s: %v wraps one sentinel", name, err)
		}
		assert.Equal(t, returned, documented, "the errors that the doc of %s names", name)
	}
}

// A nil Context is refused at once, with a panic that says so, by every call
// that takes one, and the call has done nothing.
func TestNilContextPanics(t *testing.T) {
	ctx := context.Background()
	c := newCache(t)
	tp, err := topics.TopicOf[int](c, "typed")
	require.NoError(t, err)
	s := subscribe(t, c, "t")
	ts, err := tp.Subscribe(ctx)
	require.NoError(t, err)
	defer ts.Close()

	var none context.Context // nil
	valueFn := func(context.Context, topics.Item[topics.Value]) error { return nil }
	intFn := func(context.Context, topics.Item[int]) error { return nil }
	for name, call := range map[string]func(){
		"Cache.Publish":       func() { _ = c.Publish(none, "t", []byte("x")) },
		"Cache.PublishString": func() { _ = c.PublishString(none, "t", "x") },
		"Cache.PublishAs":     func() { _ = c.PublishAs(none, "t", "ada", topics.TextValue("x")) },
		"Topic.Publish":       func() { _ = tp.Publish(none, 1) },
		"Cache.Subscribe":     func() { _, _ = c.Subscribe(none, "t") },
		"Cache.Subscribe, bad option": func() {
			_, _ = c.Subscribe(none, "t", topics.SubscribeOption(nil))
		},
		"Topic.Subscribe":          func() { _, _ = tp.Subscribe(none) },
		"Subscription.Next":        func() { _, _ = s.Next(none) },
		"Subscription.NextBatch":   func() { _, _ = s.NextBatch(none, make([]topics.Item[topics.Value], 4)) },
		"Subscription.NextBatch 0": func() { _, _ = s.NextBatch(none, nil) },
		"Subscription.All":         func() { _ = s.All(none) },
		"typed Subscription.Next":  func() { _, _ = ts.Next(none) },
		"Cache.Handle":             func() { _, _ = c.Handle(none, "t", valueFn) },
		"Cache.Handle, nil fn":     func() { _, _ = c.Handle(none, "t", nil) },
		"Topic.Handle":             func() { _, _ = tp.Handle(none, intFn) },
		"Topic.Handle, nil fn":     func() { _, _ = tp.Handle(none, nil) },
		"Cache.Shutdown":           func() { _ = c.Shutdown(none) },
	} {
		assert.PanicsWithValue(t, "topics: nil Context", call, name)
	}

	// Nothing was published, nothing subscribed, and the subscriptions read
	// on.
	st := c.Stats()
	assert.Equal(t, 2, st.Subscribers)
	assert.Equal(t, uint64(0), st.Published)
	publish(t, c, "t", "after")
	assert.Equal(t, "after", next(t, s).Value.String())
	require.NoError(t, tp.Publish(ctx, 7))
	assert.Equal(t, 7, next(t, ts).Value)

	e := topics.New()
	defer e.Close()
	assert.PanicsWithValue(t, "topics: nil Context", func() { _ = e.Shutdown(none) })
	_, err = e.CreateCache("still-open")
	assert.NoError(t, err, "the engine was not shut down")
}
