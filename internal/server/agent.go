package server

import (
	"context"
	"fmt"
	"os"
	"time"

	"lobby/internal/hostconn"
	"lobby/internal/lobby"
	"lobby/internal/provider"
	"lobby/internal/provider/local"
)

// localAgent is the in-process host agent of `lobby dev` and
// `lobby server --local-agent`: the local provider on this machine,
// registered as a host and reconciled with the store on a schedule.
type localAgent struct {
	s      *Server
	host   *lobby.Host
	prov   provider.Provider
	conn   hostconn.Conn
	period time.Duration
}

func startLocalAgent(ctx context.Context, s *Server, stateDir string) (*localAgent, error) {
	prov := s.cfg.Provider
	if prov == nil {
		p, err := local.New(local.Config{StateDir: stateDir, RunAsUser: s.cfg.DesktopUser, Logger: s.log.With("component", "provider")})
		if err != nil {
			return nil, err
		}
		prov = p
	}
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "local"
	}
	h := &lobby.Host{Name: name, Provider: prov.Name(), State: lobby.HostUp, SiteID: s.cfg.SiteID, LastSeen: time.Now(), Created: time.Now()}
	if err := s.Store.UpsertHost(ctx, h); err != nil {
		prov.Close()
		return nil, fmt.Errorf("register host %s: %w", name, err)
	}
	a := &localAgent{s: s, host: h, prov: prov, conn: hostconn.Local{P: prov}, period: 10 * time.Second}
	s.Hosts.Set(h.ID, a.conn)
	// Discover before serving, so a restarted node knows its desktops.
	if err := a.report(ctx); err != nil {
		s.Hosts.Remove(h.ID, a.conn)
		prov.Close()
		return nil, err
	}
	return a, nil
}

// report lists the host's desktops and reconciles them with the store.
func (a *localAgent) report(ctx context.Context) error {
	ds, err := a.prov.List(ctx)
	if err != nil {
		return fmt.Errorf("list local desktops: %w", err)
	}
	now := time.Now()
	if err := hostconn.Reconcile(ctx, a.s.Store, a.host.ID, ds, now); err != nil {
		return err
	}
	return a.s.Store.SetHostState(ctx, a.host.ID, lobby.HostUp, a.s.cfg.SiteID, now)
}

func (a *localAgent) run(ctx context.Context) {
	t := time.NewTicker(a.period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.report(ctx); err != nil && ctx.Err() == nil {
				a.s.log.Warn("local agent report", "err", err)
			}
		}
	}
}

// close stops supervising; desktops keep running and are re-adopted on
// the next start.
func (a *localAgent) close() error {
	a.s.Hosts.Remove(a.host.ID, a.conn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.s.Store.SetHostState(ctx, a.host.ID, lobby.HostDown, a.s.cfg.SiteID, time.Now())
	return a.prov.Close()
}
