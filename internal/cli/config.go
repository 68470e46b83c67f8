package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"lobby/internal/client"
	"lobby/internal/datadir"
	"lobby/internal/lobby"
)

// config is the saved login, in ConfigDir/config.json (mode 0600).
type config struct {
	Server      string     `json:"server"`
	Token       string     `json:"token,omitempty"`
	User        string     `json:"user,omitempty"`
	Fingerprint string     `json:"fingerprint,omitempty"`
	CA          string     `json:"ca,omitempty"`
	Expires     *time.Time `json:"expires,omitempty"` // the token's; lets us say "expired" without asking
}

const configFile = "config.json"

// loadConfig reads the saved login; a missing file is an empty config.
func (r *runner) loadConfig() (config, error) {
	var cfg config
	dir, err := r.env.configDir()
	if err != nil {
		return cfg, err
	}
	path := filepath.Join(dir, configFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("config file %s is not valid JSON (%v): fix it, or delete it and run `lobby login`", path, err)
	}
	return cfg, nil
}

// saveConfig writes the login atomically, readable by the owner only.
func (r *runner) saveConfig(cfg config) error {
	dir, err := r.env.configDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create config directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("protect config directory: %w", err)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := datadir.WriteFile(filepath.Join(dir, configFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// settings returns the login in effect: the saved one, overridden by
// LOBBY_SERVER, LOBBY_TOKEN, LOBBY_FINGERPRINT and LOBBY_CA. The saved
// token and TLS settings are dropped when LOBBY_SERVER names another
// server, so a token is never sent where it was not issued.
func (r *runner) settings() (config, error) {
	cfg, err := r.loadConfig()
	if err != nil {
		return cfg, err
	}
	if s := r.env.Getenv("LOBBY_SERVER"); s != "" && !sameServer(s, cfg.Server) {
		cfg = config{Server: s}
	}
	if t := r.env.Getenv("LOBBY_TOKEN"); t != "" {
		cfg.Token, cfg.Expires = t, nil
	}
	if f := r.env.Getenv("LOBBY_FINGERPRINT"); f != "" {
		cfg.Fingerprint = f
	}
	if ca := r.env.Getenv("LOBBY_CA"); ca != "" {
		cfg.CA = ca
	}
	return cfg, nil
}

// sameServer reports whether two server URLs name the same base URL.
func sameServer(a, b string) bool {
	ca, err1 := client.New(a)
	cb, err2 := client.New(b)
	return err1 == nil && err2 == nil && ca.BaseURL() == cb.BaseURL()
}

// tlsOptions returns the client options for a saved login's TLS settings.
func (cfg config) tlsOptions() []client.Option {
	var opts []client.Option
	if cfg.CA != "" {
		opts = append(opts, client.WithCAFile(cfg.CA))
	}
	if cfg.Fingerprint != "" {
		opts = append(opts, client.WithFingerprint(cfg.Fingerprint))
	}
	return opts
}

// client returns an API client for the login in effect. Without a server
// or token it returns a KindUnauthorized error that says to log in.
func (r *runner) client() (*client.Client, error) {
	cfg, err := r.settings()
	if err != nil {
		return nil, err
	}
	if cfg.Server == "" {
		return nil, lobby.Errorf(lobby.KindUnauthorized, "not logged in: run `lobby login --server URL` (or set LOBBY_SERVER and LOBBY_TOKEN)")
	}
	if cfg.Token == "" {
		return nil, lobby.Errorf(lobby.KindUnauthorized, "not logged in to %s: run `lobby login`", cfg.Server)
	}
	if cfg.Expires != nil && !cfg.Expires.IsZero() && r.now().After(*cfg.Expires) {
		return nil, lobby.Errorf(lobby.KindUnauthorized, "your login to %s expired at %s: run `lobby login`", cfg.Server, cfg.Expires.Local().Format(time.DateTime))
	}
	return client.New(cfg.Server, append(cfg.tlsOptions(), client.WithToken(cfg.Token))...)
}
