package ring

import (
	"context"
	"testing"
)

// benchValue has the shape of topics.Value.
type benchValue struct {
	b    []byte
	text bool
}

func BenchmarkPublish(b *testing.B) {
	ctx := context.Background()
	b.Run("int", func(b *testing.B) {
		r := New[int](1024)
		b.ReportAllocs()
		for b.Loop() {
			r.Publish(ctx, "", 1)
		}
	})
	b.Run("value", func(b *testing.B) {
		r := New[benchValue](1024)
		v := benchValue{b: []byte("hello"), text: true}
		b.ReportAllocs()
		for b.Loop() {
			r.Publish(ctx, "", v)
		}
	})
}
