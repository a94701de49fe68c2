package natsbridge

import (
	"crypto/sha256"
	"encoding/base32"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A topic is what the bridge knows of one topic of one cache: the names of
// its stream and subjects, and the page it publishes under.
//
// Naming. Topic names may hold characters that stream names and subjects
// may not ('.', '/', ':'), and can be long, so a topic's stream and
// subjects are named by an id, 26 characters of base32 of a SHA-256 of the
// cache and topic names; the names themselves are in the stream's metadata,
// which the bridge checks.
//
// The stream of a topic holds:
//
//   - at sequence 1, the marker: an empty message on prefix.m.<id>.<page>
//     that gives the stream its page;
//   - then the items, on prefix.i.<id>: item n of the page is the message of
//     stream sequence n+1.
//
// Every item is published on the condition that the marker of the page its
// publisher believes current is the stream's message 1
// (Nats-Expected-Last-Subject-Sequence), so JetStream itself refuses an item
// that would land in another page than the one it names; the item's headers,
// republished on prefix.o.<id> to every process, carry that page. A memory
// stream that lost its messages (its server restarted) has no marker: items
// are refused until a bridge writes a new marker, for a new page, which it
// can only do while the stream is empty (Nats-Expected-Last-Sequence 0).
type topic struct {
	cache, name string
	id          string
	stream      string
	in, out     string // items are published to in, and republished to out
	markPrefix  string // markers are prefix.m.<id>.<page>

	// headers for the current page; nil until the page is known.
	hdr atomic.Pointer[pageHeaders]

	// repair serialises the repairs of the topic's stream (creating it,
	// marking it, replacing it), so that concurrent publishers wait for one.
	repair sync.Mutex
	// maxPage is the greatest page this process has seen of the topic: a
	// new marker gets a greater one.
	maxPage atomic.Uint64

	// lastUse is when this process last published to the topic or opened
	// it, in Unix nanoseconds; for the janitor.
	lastUse atomic.Int64
	// local holds the feeds of the topic open in this process (one per
	// cache of that name). Under Bridge.mu.
	local []*feed
}

// pageHeaders are the headers of the items of one page.
type pageHeaders struct {
	page uint64
	mark string      // the marker's subject
	bin  nats.Header // an anonymous binary item's headers, shared: read-only
	text nats.Header // an anonymous text item's
}

// Header names. The Nats- ones are JetStream's.
const (
	hdrExpectSeq     = "Nats-Expected-Last-Subject-Sequence"
	hdrExpectSubject = "Nats-Expected-Last-Subject-Sequence-Subject"
	hdrExpectLastSeq = "Nats-Expected-Last-Sequence"
	hdrSequence      = "Nats-Sequence"
	hdrPublisher     = "Topics-Publisher" // the item's Publisher, if any
	hdrText          = "Topics-Text"      // "1" for a text Value
	hdrProbe         = "Topics-Probe"     // the janitor asks whether anyone subscribes

	// metaCache and metaTopic hold the names in a stream's metadata.
	metaCache = "topics.cache"
	metaTopic = "topics.topic"
)

var idEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// topicID returns the id of the names' stream and subjects.
func topicID(cache, name string) string {
	h := sha256.New()
	h.Write([]byte(cache))
	h.Write([]byte{0})
	h.Write([]byte(name))
	return idEncoding.EncodeToString(h.Sum(nil)[:16])
}

func newTopic(prefix, cache, name string) *topic {
	id := topicID(cache, name)
	return &topic{
		cache:      cache,
		name:       name,
		id:         id,
		stream:     prefix + "_" + id,
		in:         prefix + ".i." + id,
		out:        prefix + ".o." + id,
		markPrefix: prefix + ".m." + id + ".",
	}
}

// setPage makes page, read from the stream's marker, the page the topic
// publishes under.
func (t *topic) setPage(page uint64) {
	t.observe(page)
	if cur := t.hdr.Load(); cur == nil || cur.page != page {
		t.hdr.Store(newPageHeaders(t, page))
	}
}

// adopt makes page, seen on an item, the page the topic publishes under,
// unless a greater one is known.
func (t *topic) adopt(page uint64) {
	t.observe(page)
	var h *pageHeaders
	for {
		cur := t.hdr.Load()
		if cur != nil && cur.page >= page {
			return
		}
		if h == nil {
			h = newPageHeaders(t, page)
		}
		if t.hdr.CompareAndSwap(cur, h) {
			return
		}
	}
}

// observe notes that page exists.
func (t *topic) observe(page uint64) {
	for {
		old := t.maxPage.Load()
		if old >= page || t.maxPage.CompareAndSwap(old, page) {
			return
		}
	}
}

func newPageHeaders(t *topic, page uint64) *pageHeaders {
	mark := t.markPrefix + strconv.FormatUint(page, 10)
	return &pageHeaders{
		page: page,
		mark: mark,
		bin:  nats.Header{hdrExpectSeq: {"1"}, hdrExpectSubject: {mark}},
		text: nats.Header{hdrExpectSeq: {"1"}, hdrExpectSubject: {mark}, hdrText: {"1"}},
	}
}

// page returns the page the topic publishes under, 0 if unknown.
func (t *topic) page() uint64 {
	if h := t.hdr.Load(); h != nil {
		return h.page
	}
	return 0
}

// markPage returns the page of a marker's subject, or 0 if subj is not a
// marker of t.
func (t *topic) markPage(subj string) uint64 {
	s, ok := strings.CutPrefix(subj, t.markPrefix)
	if !ok {
		return 0
	}
	p, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0
	}
	return p
}

// streamConfig is the configuration of t's stream.
func (b *Bridge) streamConfig(t *topic) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              t.stream,
		Description:       "topics: a topic shared by natsbridge",
		Subjects:          []string{t.in, t.markPrefix + "*"},
		Storage:           b.cfg.storage,
		Replicas:          b.cfg.replicas,
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgsPerSubject: int64(b.cfg.window),
		AllowDirect:       true,
		RePublish:         &jetstream.RePublish{Source: t.in, Destination: t.out},
		Metadata:          map[string]string{metaCache: t.cache, metaTopic: t.name},
	}
}
