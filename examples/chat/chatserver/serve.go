package chatserver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// PageURL is the address to open in a browser.
func PageURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// shutdownGrace is how long a shutdown waits for requests to finish.
const shutdownGrace = 5 * time.Second

// Serve serves handler on ln until ctx is done, then shuts down gracefully:
// it stops accepting connections, closes the engine (which ends every event
// stream, with a "closing" event), and waits for requests in flight. It
// closes srv and ln.
func Serve(ctx context.Context, srv *Server, handler http.Handler, ln net.Listener) error {
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: event streams live long. Each event gets its
		// own write deadline instead (config.WriteTimeout).
	}
	// Shutdown closes the listeners, then runs this, then waits for every
	// handler to return: event streams return once the engine is closed.
	engineClosed := make(chan struct{})
	hs.RegisterOnShutdown(func() {
		srv.Close()
		close(engineClosed)
	})
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	select {
	case err := <-served: // the listener failed
		srv.Close()
		return err
	case <-ctx.Done():
	}
	srv.logf("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace+srv.cfg.WriteTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		hs.Close() // the grace period is over: cut what is left
	}
	<-engineClosed
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
