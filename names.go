package topics

import "fmt"

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
		return fmt.Errorf("%w: %s name %s is %d bytes, longer than %d", ErrInvalidName, kind, quoteName(name), len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i], topic) {
			return fmt.Errorf("%w: %s name %s has %q at byte %d; allowed are %s", ErrInvalidName, kind, quoteName(name), name[i], i, allowedBytes(topic))
		}
	}
	return nil
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

// quoteName quotes a name for an error message, shortening names so long
// that they would swamp it.
func quoteName(name string) string {
	const keep = 2 * MaxNameLen
	if len(name) > keep {
		return fmt.Sprintf("%q…", name[:keep])
	}
	return fmt.Sprintf("%q", name)
}
