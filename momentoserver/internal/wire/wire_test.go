package wire

import (
	"testing"

	"github.com/ringbus/topics"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// reference describes the messages as a .proto file would, for the
// protobuf library's own (dynamic, unregistered) implementation of them:
// what this package encodes must decode there to the same fields, and the
// other way round.
const reference = `
name: "reference.proto" syntax: "proto3" package: "cache_client.pubsub"
message_type {
  name: "_PublishRequest"
  field { name: "cache_name" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "topic" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "value" number: 3 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "._TopicValue" }
}
message_type {
  name: "_SubscriptionRequest"
  field { name: "cache_name" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "topic" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "resume_at_topic_sequence_number" number: 3 label: LABEL_OPTIONAL type: TYPE_UINT64 }
  field { name: "sequence_page" number: 4 label: LABEL_OPTIONAL type: TYPE_UINT64 }
}
message_type {
  name: "_SubscriptionItem"
  field { name: "item" number: 1 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "._TopicItem" oneof_index: 0 }
  field { name: "discontinuity" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "._Discontinuity" oneof_index: 0 }
  field { name: "heartbeat" number: 3 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "._Heartbeat" oneof_index: 0 }
  oneof_decl { name: "kind" }
}
message_type {
  name: "_TopicItem"
  field { name: "topic_sequence_number" number: 1 label: LABEL_OPTIONAL type: TYPE_UINT64 }
  field { name: "value" number: 2 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: "._TopicValue" }
  field { name: "publisher_id" number: 3 label: LABEL_OPTIONAL type: TYPE_STRING }
  field { name: "sequence_page" number: 4 label: LABEL_OPTIONAL type: TYPE_UINT64 }
}
message_type {
  name: "_TopicValue"
  field { name: "text" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING oneof_index: 0 }
  field { name: "binary" number: 2 label: LABEL_OPTIONAL type: TYPE_BYTES oneof_index: 0 }
  oneof_decl { name: "kind" }
}
message_type {
  name: "_Discontinuity"
  field { name: "last_topic_sequence" number: 1 label: LABEL_OPTIONAL type: TYPE_UINT64 }
  field { name: "new_topic_sequence" number: 2 label: LABEL_OPTIONAL type: TYPE_UINT64 }
  field { name: "new_sequence_page" number: 3 label: LABEL_OPTIONAL type: TYPE_UINT64 }
}
message_type { name: "_Heartbeat" }
message_type {
  name: "_Cache"
  field { name: "cache_name" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
}
message_type {
  name: "_ListCachesResponse"
  field { name: "cache" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: "._Cache" }
  field { name: "next_token" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
}
`

// referenceTypes returns the reference messages by name.
func referenceTypes(t testing.TB) map[string]protoreflect.MessageType {
	t.Helper()
	var fd descriptorpb.FileDescriptorProto
	require.NoError(t, prototext.Unmarshal([]byte(reference), &fd))
	// The type names above are relative to the package: make them full.
	for _, m := range fd.MessageType {
		for _, f := range m.Field {
			if f.TypeName != nil {
				f.TypeName = proto.String(".cache_client.pubsub" + f.GetTypeName())
			}
		}
	}
	file, err := protodesc.NewFile(&fd, nil)
	require.NoError(t, err)
	types := map[string]protoreflect.MessageType{}
	for i := 0; i < file.Messages().Len(); i++ {
		md := file.Messages().Get(i)
		types[string(md.Name())] = dynamicpb.NewMessageType(md)
	}
	return types
}

// check encodes m, decodes the bytes with the reference type and compares
// them, as text, with want; then encodes the reference message and decodes
// it into a fresh message of m's type, which must equal m.
func check(t *testing.T, types map[string]protoreflect.MessageType, name string, m Message, want string, fresh Message) {
	t.Helper()
	b := m.AppendWire(nil)
	require.Len(t, b, m.SizeWire(), "SizeWire")
	ref := types[name].New().Interface()
	require.NoError(t, proto.Unmarshal(b, ref))
	var wantMsg = types[name].New().Interface()
	require.NoError(t, prototext.Unmarshal([]byte(want), wantMsg))
	require.True(t, proto.Equal(wantMsg, ref), "decoded by the reference: %v, want %v", ref, wantMsg)

	rb, err := proto.Marshal(ref)
	require.NoError(t, err)
	require.NoError(t, fresh.UnmarshalWire(rb))
	// The encoding is deterministic and holds every field: equal encodings
	// are equal messages (comparing Values with == would compare pointers).
	require.Equal(t, b, fresh.AppendWire(nil), "decoded from the reference's encoding")
}

func TestMessagesMatchReference(t *testing.T) {
	types := referenceTypes(t)
	check(t, types, "_PublishRequest",
		&PublishRequest{CacheName: "c", Topic: "room/1", Value: topics.TextValue("hé"), HasValue: true},
		`cache_name: "c" topic: "room/1" value { text: "hé" }`, &PublishRequest{})
	check(t, types, "_PublishRequest",
		&PublishRequest{CacheName: "c", Topic: "t", Value: topics.BytesValue([]byte{0, 255}), HasValue: true},
		`cache_name: "c" topic: "t" value { binary: "\x00\xff" }`, &PublishRequest{})
	check(t, types, "_PublishRequest",
		&PublishRequest{CacheName: "c", Topic: "t", Value: topics.TextValue(""), HasValue: true},
		`cache_name: "c" topic: "t" value { text: "" }`, &PublishRequest{})
	check(t, types, "_SubscriptionRequest",
		&SubscriptionRequest{CacheName: "c", Topic: "t", ResumeAtTopicSequenceNumber: 300, SequencePage: topics.MaxPage},
		`cache_name: "c" topic: "t" resume_at_topic_sequence_number: 300 sequence_page: 9007199254740991`, &SubscriptionRequest{})
	check(t, types, "_SubscriptionItem",
		&SubscriptionItem{Kind: KindItem, Item: TopicItem{TopicSequenceNumber: 7, Value: topics.BytesValue([]byte("x")), PublisherID: "ada", SequencePage: 1 << 50}},
		`item { topic_sequence_number: 7 value { binary: "x" } publisher_id: "ada" sequence_page: 1125899906842624 }`, &SubscriptionItem{})
	check(t, types, "_SubscriptionItem",
		&SubscriptionItem{Kind: KindItem, Item: TopicItem{TopicSequenceNumber: 1, Value: topics.TextValue(""), SequencePage: 2}},
		`item { topic_sequence_number: 1 value { text: "" } sequence_page: 2 }`, &SubscriptionItem{})
	check(t, types, "_SubscriptionItem",
		&SubscriptionItem{Kind: KindDiscontinuity, Discontinuity: Discontinuity{LastTopicSequence: 3, NewTopicSequence: 9, NewSequencePage: 4}},
		`discontinuity { last_topic_sequence: 3 new_topic_sequence: 9 new_sequence_page: 4 }`, &SubscriptionItem{})
	check(t, types, "_SubscriptionItem", &SubscriptionItem{Kind: KindHeartbeat}, `heartbeat {}`, &SubscriptionItem{})
	check(t, types, "_ListCachesResponse",
		&ListCachesResponse{Cache: []CacheInfo{{CacheName: "a"}, {CacheName: "b"}}},
		`cache { cache_name: "a" } cache { cache_name: "b" }`, &ListCachesResponse{})
}

// Unknown fields, of any wire type, are skipped; a later oneof member
// replaces an earlier one.
func TestDecodeSkipsUnknownFields(t *testing.T) {
	types := referenceTypes(t)
	ref := types["_SubscriptionRequest"].New()
	b, err := proto.Marshal(ref.Interface())
	require.NoError(t, err)
	b = append(b, 0x2d, 1, 2, 3, 4) // field 5, fixed32
	b = append(b, 0x31, 1, 2, 3, 4, 5, 6, 7, 8)
	b = append(b, 0x3a, 2, 'h', 'i') // field 7, bytes
	b = append(b, (&SubscriptionRequest{CacheName: "c"}).AppendWire(nil)...)
	var m SubscriptionRequest
	require.NoError(t, m.UnmarshalWire(b))
	require.Equal(t, SubscriptionRequest{CacheName: "c"}, m) // no Value: == is exact

	var item SubscriptionItem
	b = (&SubscriptionItem{Kind: KindHeartbeat}).AppendWire(nil)
	b = (&SubscriptionItem{Kind: KindDiscontinuity, Discontinuity: Discontinuity{NewTopicSequence: 2}}).AppendWire(b)
	require.NoError(t, item.UnmarshalWire(b))
	require.Equal(t, SubscriptionItem{Kind: KindDiscontinuity, Discontinuity: Discontinuity{NewTopicSequence: 2}}, item)
}

func TestDecodeRefusesMalformed(t *testing.T) {
	for _, b := range [][]byte{
		{0x0a},             // field 1, bytes, no length
		{0x0a, 5, 'a'},     // length past the end
		{0x18},             // field 3, varint, no value
		{0x0a, 2, 0xff, 0}, // cache_name not UTF-8
	} {
		var m SubscriptionRequest
		require.ErrorIs(t, m.UnmarshalWire(b), ErrMalformed, "% x", b)
	}
}

// The decoders take any input without panicking, and what they decode
// encodes and decodes to the same message.
func FuzzDecode(f *testing.F) {
	f.Add((&SubscriptionItem{Kind: KindItem, Item: TopicItem{TopicSequenceNumber: 7, Value: topics.TextValue("x"), PublisherID: "p", SequencePage: 9}}).AppendWire(nil))
	f.Add((&PublishRequest{CacheName: "c", Topic: "t", Value: topics.BytesValue([]byte{1}), HasValue: true}).AppendWire(nil))
	f.Add((&ListCachesResponse{Cache: []CacheInfo{{CacheName: "a"}}, NextToken: "n"}).AppendWire(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, newMsg := range []func() Message{
			func() Message { return &PublishRequest{} },
			func() Message { return &SubscriptionRequest{} },
			func() Message { return &SubscriptionItem{} },
			func() Message { return &CacheRequest{} },
			func() Message { return &ListCachesRequest{} },
			func() Message { return &ListCachesResponse{} },
			func() Message { return &Empty{} },
		} {
			m := newMsg()
			if m.UnmarshalWire(b) != nil {
				continue
			}
			enc := m.AppendWire(nil)
			require.Len(t, enc, m.SizeWire())
			again := newMsg()
			require.NoError(t, again.UnmarshalWire(enc))
			require.Equal(t, enc, again.AppendWire(nil))
		}
	})
}
