package cli

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"lobby/internal/client"
	"lobby/internal/lobby"
)

func loginCmd(fs *flag.FlagSet) runFunc {
	server := fs.String("server", "", "Lobby's `URL`, e.g. https://lobby.example.com:8443 (default: LOBBY_SERVER, or the last login's)")
	user := fs.String("user", "", "user `NAME` (default: LOBBY_USER, or the last login's; asked on a terminal)")
	fingerprint := fs.String("fingerprint", "", "pin the server certificate's `SHA256` fingerprint, as lobby server printed it")
	ca := fs.String("ca", "", "PEM `FILE` of the CA that signed the server's certificate")
	return func(ctx context.Context, r *runner, _ []string) error {
		saved, err := r.loadConfig()
		if err != nil {
			return err
		}
		srv := firstOf(*server, r.env.Getenv("LOBBY_SERVER"), saved.Server)
		if srv == "" {
			return usageErrorf("no server: give --server URL")
		}
		same := sameServer(srv, saved.Server)
		cfg := config{Fingerprint: *fingerprint, CA: *ca}
		if cfg.Fingerprint == "" && cfg.CA == "" && same {
			cfg.Fingerprint, cfg.CA = saved.Fingerprint, saved.CA // a new login keeps the pin
		}
		if cfg.CA != "" {
			if cfg.CA, err = filepath.Abs(cfg.CA); err != nil {
				return err
			}
		}
		c, err := client.New(srv, cfg.tlsOptions()...)
		if err != nil {
			return usageErrorf("%v", err)
		}
		cfg.Server = c.BaseURL()
		name := firstOf(*user, r.env.Getenv("LOBBY_USER"))
		if name == "" && same {
			name = saved.User
		}
		if name == "" {
			if !r.env.IsTerminal {
				return usageErrorf("no username: give --user NAME")
			}
			if name, err = r.ask(ctx, "Username: ", false); err != nil {
				return err
			}
		}
		pw, err := r.secretFromEnvOrAsk(ctx, "LOBBY_PASSWORD", fmt.Sprintf("Password for %s at %s: ", name, cfg.Server), false)
		if err != nil {
			return err
		}
		res, err := c.Login(ctx, name, pw)
		if err != nil {
			return err
		}
		cfg.Token, cfg.User = res.Token, firstOf(res.User.Username, name)
		if !res.Expires.IsZero() {
			cfg.Expires = &res.Expires
		}
		if err := r.saveConfig(cfg); err != nil {
			return err
		}
		fmt.Fprintf(r.env.Stdout, "Logged in to %s as %s (%s).", cfg.Server, cfg.User, res.User.Role)
		if cfg.Expires != nil {
			fmt.Fprintf(r.env.Stdout, " The login lasts until %s.", when(*cfg.Expires))
		}
		fmt.Fprintln(r.env.Stdout)
		return nil
	}
}

func logoutCmd(*flag.FlagSet) runFunc {
	return func(ctx context.Context, r *runner, _ []string) error {
		saved, err := r.loadConfig()
		if err != nil {
			return err
		}
		if saved.Token == "" {
			fmt.Fprintln(r.env.Stdout, "Not logged in.")
			return nil
		}
		c, err := client.New(saved.Server, append(saved.tlsOptions(), client.WithToken(saved.Token))...)
		if err == nil {
			err = c.Logout(ctx)
		}
		if lobby.ErrorKind(err) == lobby.KindUnauthorized {
			err = nil // the server no longer knows the token
		}
		saved.Token, saved.Expires = "", nil
		if serr := r.saveConfig(saved); serr != nil {
			return serr
		}
		if err != nil {
			return fmt.Errorf("the token is forgotten here, but the server did not revoke it, so it stays valid until it expires: %w", err)
		}
		fmt.Fprintf(r.env.Stdout, "Logged out of %s.\n", saved.Server)
		return nil
	}
}

func whoamiCmd(fs *flag.FlagSet) runFunc {
	asJSON := jsonFlag(fs)
	return func(ctx context.Context, r *runner, _ []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		u, err := c.Me(ctx)
		if err != nil {
			return err
		}
		return r.show(u, *asJSON)
	}
}

func versionCmd(*flag.FlagSet) runFunc {
	return func(ctx context.Context, r *runner, _ []string) error {
		fmt.Fprintf(r.env.Stdout, "lobby %s\n", Version)
		cfg, err := r.settings()
		if err != nil || cfg.Server == "" {
			return nil // no server to ask; the client's version is the answer
		}
		c, err := client.New(cfg.Server, cfg.tlsOptions()...)
		if err != nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		v, err := c.Version(ctx)
		if err != nil {
			fmt.Fprintf(r.env.Stderr, "lobby: server version: %v\n", err)
			return nil
		}
		fmt.Fprintf(r.env.Stdout, "server %s (%s)\n", v, cfg.Server)
		return nil
	}
}

// jsonFlag declares --json.
func jsonFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("json", false, "print JSON instead of a table")
}

// firstOf returns the first non-empty string.
func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
