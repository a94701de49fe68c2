package ring

import (
	"context"
	"testing"
)

// benchValue has the shape of topics.Value.
type benchValue struct {
	p *byte
	n int
}

func BenchmarkPublish(b *testing.B) {
	ctx := context.Background()
	b.Run("int", func(b *testing.B) {
		r := New[int](1024)
		b.ReportAllocs()
		for b.Loop() {
			r.Publish(ctx, nil, 1)
		}
	})
	b.Run("value", func(b *testing.B) {
		r := New[benchValue](1024)
		v := benchValue{p: &[]byte("hello")[0], n: ^5}
		b.ReportAllocs()
		for b.Loop() {
			r.Publish(ctx, nil, v)
		}
	})
}
