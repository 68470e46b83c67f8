// Command withpg runs a command with a throwaway PostgreSQL server, for
// tests: it starts the server in a temporary directory, sets
// TEST_DATABASE_URL for the command, runs it, stops the server and exits
// with the command's exit code.
//
//	go run ./cmd/withpg -- go test ./...
//
// When TEST_DATABASE_URL is already set it just runs the command.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"lobby/internal/store/pgtest"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: withpg -- COMMAND [ARGS...]")
		return 2
	}
	// Signals go to the child; we clean up after it exits.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	if os.Getenv(pgtest.EnvURL) != "" {
		return runChild(args, nil, sigs)
	}
	srv, cleanup, err := startServer(sigs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "withpg: %v\n", err)
		return 1
	}
	defer cleanup()
	return runChild(args, []string{pgtest.EnvURL + "=" + srv.URL()}, sigs)
}

// startServer starts PostgreSQL in a fresh temporary directory reachable by
// the postgres user. A signal during the start aborts it.
func startServer(sigs <-chan os.Signal) (*pgtest.Server, func(), error) {
	dir, err := os.MkdirTemp("", "withpg-")
	if err != nil {
		return nil, nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	srv, err := pgtest.Start(ctx, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	cleanup := func() {
		if err := srv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "withpg: stop postgres: %v\n", err)
		}
		os.RemoveAll(dir)
	}
	return srv, cleanup, nil
}

// runChild runs the command with extra environment, forwarding SIGINT and
// SIGTERM to it, and returns its exit code.
func runChild(args, env []string, sigs <-chan os.Signal) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "withpg: %v\n", err)
		return 127
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-sigs:
				_ = cmd.Process.Signal(sig)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return exitErr.ExitCode()
	default:
		fmt.Fprintf(os.Stderr, "withpg: %v\n", err)
		return 1
	}
}
