//go:build !linux

package cli

import (
	"errors"
	"os"
)

// noEcho is not implemented off Linux: passwords come from the environment.
func noEcho(*os.File) (func(), error) {
	return nil, errors.New("turning off echo is only supported on Linux; set the password in the environment")
}
