package momentoserver_test

import (
	"net"
	"testing"
	"time"

	"github.com/ringbus/topics"
	"github.com/ringbus/topics/access"
	"github.com/ringbus/topics/momentoserver"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
)

func TestNewNeedsAuthentication(t *testing.T) {
	e := topics.New()
	defer e.Close()
	auth, err := access.New(e, access.WithKeys(testKey))
	require.NoError(t, err)
	for _, opts := range [][]momentoserver.Option{
		nil,
		{momentoserver.LocalMode(), momentoserver.WithAuthority(auth)},
		{momentoserver.WithAuthority(nil)},
		{momentoserver.LocalMode(), momentoserver.WithHeartbeat(0)},
		{momentoserver.LocalMode(), nil},
	} {
		_, err := momentoserver.New(e, opts...)
		require.ErrorIs(t, err, momentoserver.ErrInvalidOption)
	}
	_, err = momentoserver.New(nil, momentoserver.LocalMode())
	require.ErrorIs(t, err, momentoserver.ErrInvalidOption)
}

// The SDKs ping idle connections every few seconds (the Node.js SDK every
// 5 s, with no call in flight); the server must answer, not send GOAWAY as
// gRPC's default policy does for pings more often than every 5 minutes.
// This client pings, with no stream open, a little more often than every
// second: the default policy would close the connection at the fourth.
func TestIdlePingsDoNotGetGoAway(t *testing.T) {
	h := startServer(t, harnessConfig{local: true})
	conn, err := net.Dial("tcp", h.addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte(http2.ClientPreface))
	require.NoError(t, err)
	fr := http2.NewFramer(conn, conn)
	require.NoError(t, fr.WriteSettings())

	tick := time.NewTicker(1100 * time.Millisecond)
	defer tick.Stop()
	for i := range 5 {
		if i > 0 {
			<-tick.C
		}
		data := [8]byte{byte(i)}
		require.NoError(t, fr.WritePing(false, data))
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		for acked := false; !acked; {
			f, err := fr.ReadFrame()
			require.NoError(t, err, "ping %d", i)
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				t.Fatalf("ping %d: GOAWAY %v %q", i, f.ErrCode, f.DebugData())
			case *http2.SettingsFrame:
				if !f.IsAck() {
					require.NoError(t, fr.WriteSettingsAck())
				}
			case *http2.PingFrame:
				acked = f.IsAck() && f.Data == data
			}
		}
	}
}
