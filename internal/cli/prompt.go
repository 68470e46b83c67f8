package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// readLine reads one line from r a byte at a time, so nothing past the
// line is consumed from a shared stdin. It returns io.EOF only when the
// input ended before any byte.
func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		n, err := r.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				return strings.TrimSuffix(b.String(), "\r"), nil
			}
			b.WriteByte(buf[0])
		}
		if err == io.EOF && b.Len() > 0 {
			return b.String(), nil
		}
		if err != nil {
			return "", err
		}
	}
}

// ask prints prompt on stderr and reads a line from stdin; secret turns the
// terminal's echo off while typing. Cancelling ctx (Ctrl-C) stops waiting
// and restores the terminal.
func (r *runner) ask(ctx context.Context, prompt string, secret bool) (string, error) {
	if !r.env.IsTerminal {
		return "", errors.New("stdin is not a terminal")
	}
	fmt.Fprint(r.env.Stderr, prompt)
	if secret {
		if f, ok := r.env.Stdin.(*os.File); ok {
			restore, err := noEcho(f)
			if err != nil {
				fmt.Fprintln(r.env.Stderr)
				return "", fmt.Errorf("cannot hide typing on this terminal (%v)", err)
			}
			defer restore()
		}
		defer fmt.Fprintln(r.env.Stderr) // the newline the user typed was not echoed
	}
	type answer struct {
		line string
		err  error
	}
	ch := make(chan answer, 1)
	go func() {
		line, err := readLine(r.env.Stdin)
		ch <- answer{line, err}
	}()
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case a := <-ch:
		if a.err == io.EOF {
			return "", errors.New("no answer: stdin was closed")
		}
		return a.line, a.err
	}
}

// secretFromEnvOrAsk returns the environment variable env when set, or asks
// for it on a terminal (twice when confirm), or fails saying how to give it.
func (r *runner) secretFromEnvOrAsk(ctx context.Context, env, prompt string, confirm bool) (string, error) {
	if v := r.env.Getenv(env); v != "" {
		return v, nil
	}
	if !r.env.IsTerminal {
		return "", usageErrorf("no password: set %s, or run this on a terminal to be asked", env)
	}
	pw, err := r.ask(ctx, prompt, true)
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", usageErrorf("empty password")
	}
	if confirm {
		again, err := r.ask(ctx, "Again: ", true)
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", usageErrorf("the passwords do not match")
		}
	}
	return pw, nil
}
