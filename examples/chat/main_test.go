package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	"github.com/ringbus/topics/examples/chat/chatserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestListenAndServeRefusesBadAddress(t *testing.T) {
	assert.Error(t, listenAndServe("127.0.0.1:-1", chatserver.DefaultConfig()))
}
