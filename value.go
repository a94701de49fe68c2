package topics

import "unsafe"

// A Value is the payload of an untyped topic, as published by Cache.Publish
// (bytes) or Cache.PublishString (text). The bytes of a Value are immutable
// and shared by every subscriber that receives it: read them, never write
// them. The zero Value is an empty binary payload. Values are small and are
// meant to be copied.
type Value struct {
	b    []byte
	text bool
}

// BytesValue returns a binary Value holding a copy of b.
func BytesValue(b []byte) Value {
	if len(b) == 0 {
		return Value{}
	}
	c := make([]byte, len(b))
	copy(c, b)
	return Value{b: c}
}

// TextValue returns a text Value holding a copy of s.
func TextValue(s string) Value {
	if len(s) == 0 {
		return Value{text: true}
	}
	return Value{b: []byte(s), text: true}
}

// Bytes returns the payload. The slice is shared by every subscriber: it must
// not be modified. Its capacity equals its length, so appending to it copies.
func (v Value) Bytes() []byte { return v.b[:len(v.b):len(v.b)] }

// String returns the payload as a string, without copying it.
func (v Value) String() string { return unsafe.String(unsafe.SliceData(v.b), len(v.b)) }

// IsText reports whether the payload was published as text.
func (v Value) IsText() bool { return v.text }

// Len returns the payload's length in bytes.
func (v Value) Len() int { return len(v.b) }
