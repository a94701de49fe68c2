package topics

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// MaxNameLen is the longest cache or topic name, in bytes.
const MaxNameLen = 255

// ValidateCacheName returns nil if name is a valid cache name: 1 to
// MaxNameLen bytes of A-Z a-z 0-9 . _ -. Otherwise it returns an error
// wrapping ErrInvalidName that says what is wrong. Every call that takes a
// cache name checks it this way; a server can check input early with it.
func ValidateCacheName(name string) error { return validateName("cache", name, false) }

// ValidateTopicName returns nil if name is a valid topic name: like a cache
// name, with '/' and ':' allowed too. Otherwise it returns an error wrapping
// ErrInvalidName.
func ValidateTopicName(name string) error { return validateName("topic", name, true) }

func validateName(kind, name string, topic bool) error {
	if len(name) == 0 {
		return fmt.Errorf("%w: %s name is empty", ErrInvalidName, kind)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %s name %s is longer than %d bytes", ErrInvalidName, kind, quoteName(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i], topic) {
			return fmt.Errorf("%w: %s name %s has %s at byte %d; allowed are %s", ErrInvalidName, kind, quoteName(name), offending(name[i:]), i, allowedBytes(topic))
		}
	}
	return nil
}

// offending describes the character that s starts with: the character
// itself, or the byte in hex where s does not start with valid UTF-8.
func offending(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("the byte 0x%02x, which is not UTF-8,", s[0])
	}
	return fmt.Sprintf("%q", r)
}

func nameByte(b byte, topic bool) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	case b == '.', b == '_', b == '-':
		return true
	case b == '/', b == ':':
		return topic
	}
	return false
}

func allowedBytes(topic bool) string {
	if topic {
		return "A-Z a-z 0-9 . _ - / :"
	}
	return "A-Z a-z 0-9 . _ -"
}

// quotedNameLen is how much of a name an error message shows, in bytes.
const quotedNameLen = 64

// quoteName quotes a name for an error message. A name longer than
// quotedNameLen bytes is cut there (or up to 3 bytes before, not to split a
// character), and followed by "…" and its length.
func quoteName(name string) string {
	if len(name) <= quotedNameLen {
		return strconv.Quote(name)
	}
	cut := quotedNameLen
	for i := 0; i < utf8.UTFMax-1 && !utf8.RuneStart(name[cut]); i++ {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(name[:cut]), len(name))
}
