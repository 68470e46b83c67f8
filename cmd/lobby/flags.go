package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"lobby/internal/config"
)

// flagError is an error of the flag package, which has printed it with
// the usage already.
type flagError struct{ error }

func (e flagError) Unwrap() error { return e.error }

// parseFlags parses args into fs, refuses positional arguments, and
// fills the flags not given from the config file (cfgFile: a flag, or
// nil for none) and the LOBBY_* variables. -h gives errHelp.
func parseFlags(fs *flag.FlagSet, args []string, cfgFile *string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return flagError{err}
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: options are flags, see `%s -h`", fs.Arg(0), fs.Name())
	}
	path := ""
	if cfgFile != nil {
		path = *cfgFile
	}
	return config.Load(fs, path, getenv)
}

// usageExit is the exit code of a command line parseFlags refused: 0
// for -h, else 2, saying why unless the flag package did.
func usageExit(w io.Writer, name string, err error) int {
	if errors.Is(err, errHelp) {
		return 0
	}
	var fe flagError
	if !errors.As(err, &fe) {
		fmt.Fprintf(w, "%s: %v\n", name, err)
	}
	return 2
}
