package natsbridge

// StreamOf returns the name of the stream of a topic.
func StreamOf(b *Bridge, cache, topic string) string {
	return newTopic(b.cfg.prefix, cache, topic).stream
}
