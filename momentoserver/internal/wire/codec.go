package wire

import (
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // the codec Codec hands other messages to
	"google.golang.org/grpc/mem"
)

// Codec is a gRPC codec (encoding.CodecV2) for this package's messages. Any
// other message goes to gRPC's own protobuf codec, so a server forced to use
// Codec (grpc.ForceServerCodecV2) serves its other services as before. Its
// name is "proto": on the wire, these are protobuf messages.
type Codec struct{}

var _ encoding.CodecV2 = Codec{}

// Name returns "proto".
func (Codec) Name() string { return "proto" }

// Marshal encodes v.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(Message)
	if !ok {
		return protoCodec.Marshal(v)
	}
	n := m.SizeWire()
	if n == 0 {
		return nil, nil
	}
	if mem.IsBelowBufferPoolingThreshold(n) {
		return mem.BufferSlice{mem.SliceBuffer(m.AppendWire(make([]byte, 0, n)))}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(n)
	*buf = m.AppendWire((*buf)[:0])
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// Unmarshal decodes data into v. It keeps no reference to data.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(Message)
	if !ok {
		return protoCodec.Unmarshal(data, v)
	}
	if len(data) == 1 {
		return m.UnmarshalWire(data[0].ReadOnlyData())
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return m.UnmarshalWire(buf.ReadOnlyData())
}

// protoCodec is gRPC's protobuf codec, registered by the package imported
// above before this package's variables are initialised.
var protoCodec = encoding.GetCodecV2("proto")
