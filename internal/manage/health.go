package manage

import (
	"context"

	"lobby/internal/health"
	"lobby/internal/lobby"
)

// Health runs the cluster's health check from this node, for operators
// and administrators.
func (s *Service) Health(ctx context.Context, a Actor) (*health.Report, error) {
	if err := Allow(a, lobby.PermRead); err != nil {
		return nil, err
	}
	if s.Checker == nil {
		return nil, lobby.Errorf(lobby.KindUnavailable, "this node runs no health check")
	}
	return s.Checker.Run(ctx), nil
}
