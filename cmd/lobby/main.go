// Command lobby is Lobby's one binary: the node (`lobby server`, `lobby
// dev`), the host agent (`lobby agent`) and the client commands that talk
// to its REST API.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"lobby/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "server", "dev":
			return runNode(ctx, args[0], args[1:], stdout, stderr)
		case "agent":
			return runAgent(ctx, args[1:], stdout, stderr, os.Getenv)
		case "health":
			return runHealth(ctx, args[1:], stdout, stderr, os.Getenv)
		case "bench":
			return runBench(ctx, args[1:], stdout, stderr)
		case "admin":
			if len(args) >= 3 && args[1] == "db" && args[2] == "migrate" {
				return runDBMigrate(ctx, args[3:], stdout, stderr, os.Getenv)
			}
			if isDBMove(args) {
				return runDBMove(ctx, args[2:], stdout, stderr, os.Getenv)
			}
		case "--version":
			fmt.Fprintln(stdout, "lobby", version)
			return 0
		}
	}
	cli.Version = version
	return cli.Main(ctx, args, cli.Env{
		Stdin: os.Stdin, Stdout: stdout, Stderr: stderr,
		IsTerminal: term.IsTerminal(int(os.Stdin.Fd())),
	})
}

func runNode(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) int {
	m := &Main{Stdout: stdout, Stderr: stderr, Getenv: os.Getenv}
	if err := m.ParseFlags(cmd, args); err != nil {
		return usageExit(stderr, "lobby "+cmd, err)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "lobby %s: %v\n", cmd, err)
		m.Close()
		return 1
	}
	<-ctx.Done()
	if err := m.Close(); err != nil {
		fmt.Fprintf(stderr, "lobby %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q is not valid: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
