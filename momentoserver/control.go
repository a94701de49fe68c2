package momentoserver

import (
	"context"
	"fmt"

	"github.com/ringbus/topics/access"
	"github.com/ringbus/topics/momentoserver/internal/wire"
)

// administrator returns nil if the caller of the call may create and delete
// caches, and otherwise why not.
func (s *Server) administrator(ctx context.Context, what, cache string) error {
	c, err := s.callerOfCall(ctx)
	if err != nil {
		return err
	}
	if !c.administers() {
		return fmt.Errorf("%w: %s cache %q needs a token that grants %s", access.ErrPermissionDenied, what, cache, adminPermission)
	}
	return nil
}

func (s *Server) createCache(ctx context.Context, req *wire.CacheRequest) (wire.Message, error) {
	if err := s.administrator(ctx, "creating", req.CacheName); err != nil {
		return nil, callError(ctx, err)
	}
	if _, err := s.engine.CreateCache(req.CacheName); err != nil {
		return nil, callError(ctx, err)
	}
	return empty, nil
}

func (s *Server) deleteCache(ctx context.Context, req *wire.CacheRequest) (wire.Message, error) {
	if err := s.administrator(ctx, "deleting", req.CacheName); err != nil {
		return nil, callError(ctx, err)
	}
	if err := s.engine.DeleteCache(req.CacheName); err != nil {
		return nil, callError(ctx, err)
	}
	return empty, nil
}

// listCaches lists, in one page, the caches the caller's token names or
// selects with all caches.
func (s *Server) listCaches(ctx context.Context, _ *wire.ListCachesRequest) (wire.Message, error) {
	c, err := s.callerOfCall(ctx)
	if err != nil {
		return nil, callError(ctx, err)
	}
	resp := &wire.ListCachesResponse{}
	for _, name := range s.engine.ListCaches() {
		if c.lists(name) {
			resp.Cache = append(resp.Cache, wire.CacheInfo{CacheName: name})
		}
	}
	return resp, nil
}
