// Package wire is Momento's public topics protocol as it travels: the
// messages of the services cache_client.pubsub.Pubsub and
// control_client.ScsControl (the calls this server offers of the latter),
// encoded and decoded by hand with protowire, and a gRPC codec for them.
//
// The messages, field numbers and service names follow the protocol
// published by Momento in the Apache-2.0 repository momentohq/client-protos
// (proto/cachepubsub.proto, proto/controlclient.proto, proto/common.proto).
// Only the wire contract is taken from there; the code is this package's own.
//
// Why by hand rather than generated code: generated messages register their
// full names (cache_client.pubsub._PublishRequest and so on) in the
// process-wide protobuf registry, and so does the Momento Go SDK. A Go test
// that links the SDK and this server would then panic at start-up with a
// registration conflict. These messages register nothing. The encoding is
// also a few lines per message, and the subscription items, which every
// stream encodes for every item, encode without reflection.
package wire

import (
	"errors"
	"fmt"
	"unicode/utf8"
	"unsafe"

	"github.com/ringbus/topics"
	"google.golang.org/protobuf/encoding/protowire"
)

// Full method names, as gRPC puts them in the request path.
const (
	PubsubService  = "cache_client.pubsub.Pubsub"
	ControlService = "control_client.ScsControl"

	PublishMethod     = "/" + PubsubService + "/Publish"
	SubscribeMethod   = "/" + PubsubService + "/Subscribe"
	CreateCacheMethod = "/" + ControlService + "/CreateCache"
	DeleteCacheMethod = "/" + ControlService + "/DeleteCache"
	ListCachesMethod  = "/" + ControlService + "/ListCaches"
)

// A Message is one of this package's messages: it encodes itself and decodes
// itself from the wire. UnmarshalWire copies whatever it keeps of b.
type Message interface {
	SizeWire() int
	AppendWire(b []byte) []byte
	UnmarshalWire(b []byte) error
}

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("momentoserver: malformed message")

// cache_client.pubsub._PublishRequest
//
//	string cache_name = 1; string topic = 2; _TopicValue value = 3;
type PublishRequest struct {
	CacheName string
	Topic     string
	Value     topics.Value
	HasValue  bool // field 3 was present
}

// cache_client.pubsub._SubscriptionRequest
//
//	string cache_name = 1; string topic = 2;
//	uint64 resume_at_topic_sequence_number = 3; uint64 sequence_page = 4;
type SubscriptionRequest struct {
	CacheName                   string
	Topic                       string
	ResumeAtTopicSequenceNumber uint64
	SequencePage                uint64
}

// Kind says which member of _SubscriptionItem's oneof kind is set.
type Kind uint8

// The members of _SubscriptionItem's oneof kind.
const (
	KindNone          Kind = iota // none: a malformed item
	KindItem                      // _TopicItem item = 1
	KindDiscontinuity             // _Discontinuity discontinuity = 2
	KindHeartbeat                 // _Heartbeat heartbeat = 3
)

// cache_client.pubsub._SubscriptionItem: one of an item, a discontinuity or
// a heartbeat, as Kind says.
type SubscriptionItem struct {
	Kind          Kind
	Item          TopicItem
	Discontinuity Discontinuity
}

// cache_client.pubsub._TopicItem
//
//	uint64 topic_sequence_number = 1; _TopicValue value = 2;
//	string publisher_id = 3; uint64 sequence_page = 4;
//
// _TopicValue is oneof kind { string text = 1; bytes binary = 2; }: a
// topics.Value, which knows which of the two it is.
type TopicItem struct {
	TopicSequenceNumber uint64
	Value               topics.Value
	PublisherID         string
	SequencePage        uint64
}

// cache_client.pubsub._Discontinuity
//
//	uint64 last_topic_sequence = 1; uint64 new_topic_sequence = 2;
//	uint64 new_sequence_page = 3;
type Discontinuity struct {
	LastTopicSequence uint64
	NewTopicSequence  uint64
	NewSequencePage   uint64
}

// common._Empty, and the empty responses of the control service
// (_CreateCacheResponse, _DeleteCacheResponse).
type Empty struct{}

// control_client._CreateCacheRequest and _DeleteCacheRequest:
//
//	string cache_name = 1;
type CacheRequest struct {
	CacheName string
}

// control_client._ListCachesRequest
//
//	string next_token = 1;
type ListCachesRequest struct {
	NextToken string
}

// control_client._ListCachesResponse
//
//	repeated _Cache cache = 1; string next_token = 2;
type ListCachesResponse struct {
	Cache     []CacheInfo
	NextToken string
}

// control_client._Cache
//
//	string cache_name = 1; _CacheLimits cache_limits = 2; _TopicLimits topic_limits = 3;
//
// The limits are not sent (the SDKs read a missing one as zeros).
type CacheInfo struct {
	CacheName string
}

// Field numbers.
const (
	fCacheName = 1
	fTopic     = 2

	fPublishValue = 3

	fResumeAt     = 3
	fSequencePage = 4

	fItem          = 1
	fDiscontinuity = 2
	fHeartbeat     = 3

	fItemSequence  = 1
	fItemValue     = 2
	fItemPublisher = 3
	fItemPage      = 4

	fText   = 1
	fBinary = 2

	fLast    = 1
	fNew     = 2
	fNewPage = 3

	fListCache     = 1
	fListNextToken = 2
	fNextToken     = 1
)

// --- encoding

func sizeString(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func sizeVarint(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// sizeEmbedded is the size of an embedded message of n bytes, sent even
// when empty (a oneof member, or a message field that is set).
func sizeEmbedded(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func appendEmbedded(b []byte, num protowire.Number, n int) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(n))
}

// _TopicValue: one member of the oneof, sent even when empty.
func sizeValue(v topics.Value) int {
	if v.IsText() {
		return sizeEmbedded(fText, v.Len())
	}
	return sizeEmbedded(fBinary, v.Len())
}

func appendValue(b []byte, v topics.Value) []byte {
	num := protowire.Number(fBinary)
	if v.IsText() {
		num = fText
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v.Bytes())
}

func (m *PublishRequest) SizeWire() int {
	n := sizeString(fCacheName, m.CacheName) + sizeString(fTopic, m.Topic)
	if m.HasValue {
		n += sizeEmbedded(fPublishValue, sizeValue(m.Value))
	}
	return n
}

func (m *PublishRequest) AppendWire(b []byte) []byte {
	b = appendString(b, fCacheName, m.CacheName)
	b = appendString(b, fTopic, m.Topic)
	if m.HasValue {
		b = appendEmbedded(b, fPublishValue, sizeValue(m.Value))
		b = appendValue(b, m.Value)
	}
	return b
}

func (m *SubscriptionRequest) SizeWire() int {
	return sizeString(fCacheName, m.CacheName) + sizeString(fTopic, m.Topic) +
		sizeVarint(fResumeAt, m.ResumeAtTopicSequenceNumber) + sizeVarint(fSequencePage, m.SequencePage)
}

func (m *SubscriptionRequest) AppendWire(b []byte) []byte {
	b = appendString(b, fCacheName, m.CacheName)
	b = appendString(b, fTopic, m.Topic)
	b = appendVarint(b, fResumeAt, m.ResumeAtTopicSequenceNumber)
	return appendVarint(b, fSequencePage, m.SequencePage)
}

func (m *TopicItem) size() int {
	return sizeVarint(fItemSequence, m.TopicSequenceNumber) +
		sizeEmbedded(fItemValue, sizeValue(m.Value)) +
		sizeString(fItemPublisher, m.PublisherID) +
		sizeVarint(fItemPage, m.SequencePage)
}

func (m *TopicItem) append(b []byte) []byte {
	b = appendVarint(b, fItemSequence, m.TopicSequenceNumber)
	b = appendEmbedded(b, fItemValue, sizeValue(m.Value))
	b = appendValue(b, m.Value)
	b = appendString(b, fItemPublisher, m.PublisherID)
	return appendVarint(b, fItemPage, m.SequencePage)
}

func (m *Discontinuity) size() int {
	return sizeVarint(fLast, m.LastTopicSequence) + sizeVarint(fNew, m.NewTopicSequence) + sizeVarint(fNewPage, m.NewSequencePage)
}

func (m *Discontinuity) append(b []byte) []byte {
	b = appendVarint(b, fLast, m.LastTopicSequence)
	b = appendVarint(b, fNew, m.NewTopicSequence)
	return appendVarint(b, fNewPage, m.NewSequencePage)
}

func (m *SubscriptionItem) SizeWire() int {
	switch m.Kind {
	case KindItem:
		return sizeEmbedded(fItem, m.Item.size())
	case KindDiscontinuity:
		return sizeEmbedded(fDiscontinuity, m.Discontinuity.size())
	case KindHeartbeat:
		return sizeEmbedded(fHeartbeat, 0)
	}
	return 0
}

func (m *SubscriptionItem) AppendWire(b []byte) []byte {
	switch m.Kind {
	case KindItem:
		b = appendEmbedded(b, fItem, m.Item.size())
		return m.Item.append(b)
	case KindDiscontinuity:
		b = appendEmbedded(b, fDiscontinuity, m.Discontinuity.size())
		return m.Discontinuity.append(b)
	case KindHeartbeat:
		return appendEmbedded(b, fHeartbeat, 0)
	}
	return b
}

func (*Empty) SizeWire() int              { return 0 }
func (*Empty) AppendWire(b []byte) []byte { return b }

func (m *CacheRequest) SizeWire() int { return sizeString(fCacheName, m.CacheName) }
func (m *CacheRequest) AppendWire(b []byte) []byte {
	return appendString(b, fCacheName, m.CacheName)
}

func (m *ListCachesRequest) SizeWire() int { return sizeString(fNextToken, m.NextToken) }
func (m *ListCachesRequest) AppendWire(b []byte) []byte {
	return appendString(b, fNextToken, m.NextToken)
}

func (m *ListCachesResponse) SizeWire() int {
	n := sizeString(fListNextToken, m.NextToken)
	for i := range m.Cache {
		n += sizeEmbedded(fListCache, sizeString(fCacheName, m.Cache[i].CacheName))
	}
	return n
}

func (m *ListCachesResponse) AppendWire(b []byte) []byte {
	for i := range m.Cache {
		b = appendEmbedded(b, fListCache, sizeString(fCacheName, m.Cache[i].CacheName))
		b = appendString(b, fCacheName, m.Cache[i].CacheName)
	}
	return appendString(b, fListNextToken, m.NextToken)
}

// --- decoding

// eachField calls f with every field of the message in b: its number, its
// wire type, and its value (the bytes of a length-delimited field, or the
// number of a varint). Fields of other wire types are skipped, as unknown
// fields are.
func eachField(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed(protowire.ParseError(n))
		}
		b = b[n:]
		var (
			v []byte
			x uint64
		)
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return malformed(protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.VarintType && typ != protowire.BytesType {
			continue
		}
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

func malformed(err error) error { return fmt.Errorf("%w: %v", ErrMalformed, err) }

// text returns a copy of b as a string, refusing invalid UTF-8 as proto3
// string fields do.
func text(what string, b []byte) (string, error) {
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%w: %s is not valid UTF-8", ErrMalformed, what)
	}
	return string(b), nil
}

// decodeValue decodes a _TopicValue into a Value holding a copy of its bytes.
func decodeValue(b []byte) (topics.Value, error) {
	v := topics.BytesValue(nil)
	err := eachField(b, func(num protowire.Number, typ protowire.Type, p []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fText:
			if !utf8.Valid(p) {
				return fmt.Errorf("%w: text value is not valid UTF-8", ErrMalformed)
			}
			v = topics.TextValue(unsafe.String(unsafe.SliceData(p), len(p))) // TextValue copies
		case fBinary:
			v = topics.BytesValue(p)
		}
		return nil
	})
	return v, err
}

func (m *PublishRequest) UnmarshalWire(b []byte) error {
	*m = PublishRequest{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) (err error) {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fCacheName:
			m.CacheName, err = text("cache_name", v)
		case fTopic:
			m.Topic, err = text("topic", v)
		case fPublishValue:
			m.Value, err = decodeValue(v)
			m.HasValue = true
		}
		return err
	})
}

func (m *SubscriptionRequest) UnmarshalWire(b []byte) error {
	*m = SubscriptionRequest{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) (err error) {
		switch {
		case num == fCacheName && typ == protowire.BytesType:
			m.CacheName, err = text("cache_name", v)
		case num == fTopic && typ == protowire.BytesType:
			m.Topic, err = text("topic", v)
		case num == fResumeAt && typ == protowire.VarintType:
			m.ResumeAtTopicSequenceNumber = x
		case num == fSequencePage && typ == protowire.VarintType:
			m.SequencePage = x
		}
		return err
	})
}

func (m *TopicItem) unmarshal(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) (err error) {
		switch {
		case num == fItemSequence && typ == protowire.VarintType:
			m.TopicSequenceNumber = x
		case num == fItemValue && typ == protowire.BytesType:
			m.Value, err = decodeValue(v)
		case num == fItemPublisher && typ == protowire.BytesType:
			m.PublisherID, err = text("publisher_id", v)
		case num == fItemPage && typ == protowire.VarintType:
			m.SequencePage = x
		}
		return err
	})
}

func (m *Discontinuity) unmarshal(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
		if typ != protowire.VarintType {
			return nil
		}
		switch num {
		case fLast:
			m.LastTopicSequence = x
		case fNew:
			m.NewTopicSequence = x
		case fNewPage:
			m.NewSequencePage = x
		}
		return nil
	})
}

func (m *SubscriptionItem) UnmarshalWire(b []byte) error {
	*m = SubscriptionItem{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fItem:
			m.Kind, m.Item, m.Discontinuity = KindItem, TopicItem{}, Discontinuity{}
			return m.Item.unmarshal(v)
		case fDiscontinuity:
			m.Kind, m.Item, m.Discontinuity = KindDiscontinuity, TopicItem{}, Discontinuity{}
			return m.Discontinuity.unmarshal(v)
		case fHeartbeat:
			m.Kind, m.Item, m.Discontinuity = KindHeartbeat, TopicItem{}, Discontinuity{}
		}
		return nil
	})
}

func (*Empty) UnmarshalWire(b []byte) error {
	return eachField(b, func(protowire.Number, protowire.Type, []byte, uint64) error { return nil })
}

func (m *CacheRequest) UnmarshalWire(b []byte) error {
	*m = CacheRequest{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) (err error) {
		if num == fCacheName && typ == protowire.BytesType {
			m.CacheName, err = text("cache_name", v)
		}
		return err
	})
}

func (m *ListCachesRequest) UnmarshalWire(b []byte) error {
	*m = ListCachesRequest{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) (err error) {
		if num == fNextToken && typ == protowire.BytesType {
			m.NextToken, err = text("next_token", v)
		}
		return err
	})
}

func (m *ListCachesResponse) UnmarshalWire(b []byte) error {
	*m = ListCachesResponse{}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) (err error) {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fListCache:
			var c CacheRequest // _Cache's cache_name is field 1, as in CacheRequest
			if err := c.UnmarshalWire(v); err != nil {
				return err
			}
			m.Cache = append(m.Cache, CacheInfo(c))
		case fListNextToken:
			m.NextToken, err = text("next_token", v)
		}
		return err
	})
}
