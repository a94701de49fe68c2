package momentoserver

import (
	"fmt"
	"time"

	"github.com/ringbus/topics/access"
)

// DefaultHeartbeat is how often a subscription stream with nothing else to
// send sends a heartbeat, unless WithHeartbeat says otherwise.
const DefaultHeartbeat = 5 * time.Second

// An Option configures a Server.
type Option interface {
	apply(*config) error
}

type config struct {
	authority *access.Authority
	local     bool
	heartbeat time.Duration
}

type option func(*config) error

func (f option) apply(c *config) error { return f(c) }

// WithAuthority makes the server demand, in the authorization header of
// every call, a token minted by a (access.Authority.Mint), and serve each
// call through the session that token opens: see the package doc for what
// each call needs. A server takes either WithAuthority or LocalMode.
func WithAuthority(a *access.Authority) Option {
	return option(func(c *config) error {
		if a == nil {
			return fmt.Errorf("%w: WithAuthority(nil)", ErrInvalidOption)
		}
		c.authority = a
		return nil
	})
}

// LocalMode makes the server accept every call, whatever its authorization
// header holds (the Momento SDKs' local credential providers send an empty
// one), with every right: publish and subscribe anywhere, create, list and
// delete caches. Items published carry no publisher_id. It is for
// development and CI on a machine of one's own; a server that anybody else
// can reach takes WithAuthority instead.
func LocalMode() Option {
	return option(func(c *config) error {
		c.local = true
		return nil
	})
}

// WithHeartbeat sets how often a subscription stream that has sent nothing
// else for that long sends a heartbeat (every stream also starts with one).
// d must be positive; the default is DefaultHeartbeat.
func WithHeartbeat(d time.Duration) Option {
	return option(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: WithHeartbeat(%v): must be positive", ErrInvalidOption, d)
		}
		c.heartbeat = d
		return nil
	})
}

func buildConfig(opts []Option) (config, error) {
	cfg := config{heartbeat: DefaultHeartbeat}
	for _, o := range opts {
		if o == nil {
			return cfg, fmt.Errorf("%w: nil Option", ErrInvalidOption)
		}
		if err := o.apply(&cfg); err != nil {
			return cfg, err
		}
	}
	switch {
	case cfg.authority == nil && !cfg.local:
		return cfg, fmt.Errorf("%w: no authentication: give WithAuthority, or LocalMode to accept every call", ErrInvalidOption)
	case cfg.authority != nil && cfg.local:
		return cfg, fmt.Errorf("%w: WithAuthority and LocalMode together: choose one", ErrInvalidOption)
	}
	return cfg, nil
}
