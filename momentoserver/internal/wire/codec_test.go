package wire

import (
	"bytes"
	"testing"

	"github.com/ringbus/topics"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestCodec(t *testing.T) {
	var c Codec
	require.Equal(t, "proto", c.Name())

	for _, size := range []int{10, 100 << 10} { // below and above gRPC's pooling threshold
		m := &SubscriptionItem{Kind: KindItem, Item: TopicItem{TopicSequenceNumber: 1, Value: topics.BytesValue(bytes.Repeat([]byte{7}, size)), SequencePage: 1}}
		data, err := c.Marshal(m)
		require.NoError(t, err)
		require.Equal(t, m.AppendWire(nil), data.Materialize())
		// Decoding from several buffers, as gRPC may hand them over.
		raw := data.Materialize()
		data.Free()
		split := mem.BufferSlice{mem.SliceBuffer(raw[:3]), mem.SliceBuffer(raw[3:])}
		var got SubscriptionItem
		require.NoError(t, c.Unmarshal(split, &got))
		require.Equal(t, raw, got.AppendWire(nil))
	}

	empty, err := c.Marshal(&Empty{})
	require.NoError(t, err)
	require.Zero(t, empty.Len())

	// Other messages go to gRPC's protobuf codec.
	data, err := c.Marshal(wrapperspb.String("other"))
	require.NoError(t, err)
	var s wrapperspb.StringValue
	require.NoError(t, c.Unmarshal(data, &s))
	require.Equal(t, "other", s.GetValue())
	_, err = c.Marshal(struct{}{})
	require.Error(t, err)
}
