// Package cli is the `lobby <noun> <verb>` command line over the REST API:
// it parses arguments, keeps the login in a config file, prints tables or
// JSON, relays a local VNC viewer to a desktop, and maps API error kinds to
// exit codes. cmd/lobby calls Main for every subcommand it does not run
// itself.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"lobby/internal/lobby"
)

// Version is the client's version, printed by `lobby version`; cmd/lobby
// sets it at start.
var Version = "dev"

// Exit codes.
const (
	ExitOK           = 0
	ExitFailure      = 1 // anything not listed below
	ExitUsage        = 2 // unknown command or flag, missing argument
	ExitUnauthorized = 3 // not logged in, expired token, or not allowed
	ExitNotFound     = 4
	ExitConflict     = 5
)

// Env is what a command may touch of the process around it.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the environment (LOBBY_SERVER, LOBBY_TOKEN,
	// LOBBY_PASSWORD, ...); nil means os.Getenv.
	Getenv func(string) string
	// ConfigDir holds config.json; "" means os.UserConfigDir()/lobby.
	ConfigDir string
	// IsTerminal says Stdin is a terminal, so passwords may be asked.
	IsTerminal bool
}

func (e Env) withDefaults() Env {
	if e.Stdin == nil {
		e.Stdin = strings.NewReader("")
	}
	if e.Stdout == nil {
		e.Stdout = io.Discard
	}
	if e.Stderr == nil {
		e.Stderr = io.Discard
	}
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	return e
}

// configDir returns where the config file lives.
func (e Env) configDir() (string, error) {
	if e.ConfigDir != "" {
		return e.ConfigDir, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory: %w", err)
	}
	return filepath.Join(d, "lobby"), nil
}

// Main runs one command; args exclude the program name. It returns the
// process's exit code.
func Main(ctx context.Context, args []string, env Env) int {
	env = env.withDefaults()
	if len(args) == 0 {
		printHelp(env.Stderr)
		return ExitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return help(env, args[1:])
	}
	cmd, rest, err := lookup(args)
	if err != nil {
		fmt.Fprintf(env.Stderr, "lobby: %v\n", err)
		return ExitUsage
	}
	fs := flag.NewFlagSet("lobby "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	run := cmd.setup(fs)
	r := &runner{env: env, cmd: cmd, fs: fs, now: time.Now}
	pos, err := parseArgs(fs, rest)
	switch {
	case errors.Is(err, flag.ErrHelp):
		cmd.printUsage(env.Stdout, fs)
		return ExitOK
	case err != nil:
		return r.report(usageErrorf("%v", err))
	case len(pos) < cmd.minArgs:
		return r.report(usageErrorf("missing %s", cmd.missing(len(pos))))
	case cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs:
		return r.report(usageErrorf("unexpected argument %q", pos[cmd.maxArgs]))
	}
	return r.report(run(ctx, r, pos))
}

// runner carries one command's environment.
type runner struct {
	env Env
	cmd *command
	fs  *flag.FlagSet
	now func() time.Time
}

// usageError is a mistake in the command line: exit 2 with the usage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// report prints err, if any, and returns the exit code it deserves.
func (r *runner) report(err error) int {
	if err == nil {
		return ExitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(r.env.Stderr, "lobby: %s\n", ue.msg)
		r.cmd.printUsage(r.env.Stderr, r.fs)
		return ExitUsage
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(r.env.Stderr, "lobby: interrupted")
		return ExitFailure
	}
	msg := err.Error()
	var le *lobby.Error
	if !errors.As(err, &le) {
		fmt.Fprintf(r.env.Stderr, "lobby: %s\n", msg)
		return ExitFailure
	}
	if le.Kind == lobby.KindUnauthorized && r.cmd.name != "login" && !strings.Contains(msg, "lobby login") {
		msg += " (run `lobby login` to sign in again)"
	}
	fmt.Fprintf(r.env.Stderr, "lobby: %s\n", msg)
	return exitCode(le.Kind)
}

// exitCode maps an API error kind to an exit code.
func exitCode(k lobby.Kind) int {
	switch k {
	case lobby.KindUnauthorized, lobby.KindForbidden:
		return ExitUnauthorized
	case lobby.KindNotFound:
		return ExitNotFound
	case lobby.KindConflict:
		return ExitConflict
	}
	return ExitFailure
}
