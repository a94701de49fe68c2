package topics

import "unsafe"

// A Value is the payload of an untyped topic, as published by Cache.Publish
// (bytes) or Cache.PublishString (text). The bytes of a Value are immutable
// and shared by every subscriber that receives it: read them, never write
// them. The zero Value is an empty binary payload. Values are small and are
// meant to be copied.
type Value struct {
	// Sixteen bytes rather than a slice and a flag (32): a Value sits in
	// every entry of a Cache's rings and in every Item delivered, and
	// entries are what a publish allocates.
	p *byte // the first byte; nil when empty
	n int   // the length, or ^length (below zero) for text
}

// BytesValue returns a binary Value holding a copy of b.
func BytesValue(b []byte) Value {
	if len(b) == 0 {
		return Value{}
	}
	c := make([]byte, len(b))
	copy(c, b)
	return Value{p: &c[0], n: len(c)}
}

// TextValue returns a text Value holding a copy of s.
func TextValue(s string) Value {
	if len(s) == 0 {
		return Value{n: ^0}
	}
	c := []byte(s)
	return Value{p: &c[0], n: ^len(c)}
}

// Bytes returns the payload. The slice is shared by every subscriber: it must
// not be modified. Its capacity equals its length, so appending to it copies.
func (v Value) Bytes() []byte {
	if v.p == nil {
		return nil
	}
	return unsafe.Slice(v.p, v.Len())
}

// String returns the payload as a string, without copying it.
func (v Value) String() string { return unsafe.String(v.p, v.Len()) }

// IsText reports whether the payload was published as text.
func (v Value) IsText() bool { return v.n < 0 }

// Len returns the payload's length in bytes.
func (v Value) Len() int {
	if v.n < 0 {
		return ^v.n
	}
	return v.n
}
