package server

import (
	"context"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"time"

	"lobby/internal/datadir"
	"lobby/internal/health"
	"lobby/internal/pki"
	"lobby/internal/store/postgres"
	"lobby/internal/store/sqlstore"
)

// validateHealth checks the health options; zero takes the default.
func (c *Config) validateHealth() error {
	for _, o := range []struct {
		flag string
		d    time.Duration
	}{{"--max-clock-skew", c.MaxClockSkew}, {"--watchdog-store", c.WatchdogStore}, {"--watchdog-loop", c.WatchdogLoop}} {
		if o.d < 0 {
			return fmt.Errorf("%s %s is not valid: give a positive duration like 10s", o.flag, o.d)
		}
	}
	if c.WatchdogLoop > 0 && c.WatchdogLoop < 2*time.Second {
		return fmt.Errorf("--watchdog-loop %s is too short: the node's loops run every second; give 2s or more", c.WatchdogLoop)
	}
	if c.WatchdogStore > 0 && c.WatchdogStore < 2*time.Second {
		return fmt.Errorf("--watchdog-store %s is too short: the database is asked every second; give 2s or more", c.WatchdogStore)
	}
	return nil
}

// initHealth makes the node's watchdog, its health monitor and the health
// check the API and the pages run from this node.
func (s *Server) initHealth() error {
	s.Watchdog = health.NewWatchdog(health.WatchdogConfig{StoreLimit: s.cfg.WatchdogStore, LoopLimit: s.cfg.WatchdogLoop, Logger: s.log.With("component", "health")})
	s.prober = health.NewProber(0)
	s.closers = append(s.closers, func() error { s.prober.Close(); return nil })
	mon, err := health.NewMonitor(health.MonitorConfig{
		Store: s.Store, SiteID: s.cfg.SiteID, Instance: s.Member.Instance(), Watchdog: s.Watchdog, Prober: s.prober, Logger: s.log,
		CAFingerprint: pki.FingerprintHex(s.CA.Fingerprint()), LinkCert: pki.CertPEM(s.Hub.Cert.Certificate[0]),
		WebCertExpires: func() time.Time { return s.webCertExpires },
		Links:          s.Hub.AgentLinks,
	})
	if err != nil {
		return err
	}
	s.monitor = mon
	s.Health = &health.Checker{
		Source: health.Source{
			Store: s.Store, Database: s.describeStore(), From: s.nodeName(), Prober: s.prober, KnownSchema: sqlstore.SchemaVersion,
			LoadCA: func(context.Context) (*x509.Certificate, error) { return s.CA.Cert, nil },
		},
		Options: health.Options{MaxClockSkew: s.cfg.MaxClockSkew},
	}
	return nil
}

func (s *Server) nodeName() string { return fmt.Sprintf("node %d (%s)", s.cfg.SiteID, s.cfg.Name) }

func (s *Server) describeStore() string {
	if s.cfg.Postgres != "" {
		return postgres.DescribeURL(s.cfg.Postgres)
	}
	return filepath.Join(s.cfg.DataDir, datadir.SQLiteFile)
}

// ping is this node's answer to the other nodes' probes.
func (s *Server) ping() health.Ping {
	p := health.Ping{SiteID: s.cfg.SiteID, Name: s.cfg.Name, Instance: s.Member.Instance(), Version: s.cfg.Version, Time: time.Now()}
	if err := s.ready(context.Background()); err != nil {
		p.NotReady = err.Error()
	}
	return p
}
