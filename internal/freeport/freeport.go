// Package freeport picks loopback TCP ports for programs that must be
// told their port before they bind it (PostgreSQL, Xvnc, HAProxy, a node
// that comes back on its old address). A port that a listener on port 0
// was given and closed can be given again at once to any other listener
// on port 0 or outgoing connection on the machine, before the program
// binds it; so the ports here are picked below the kernel's ephemeral
// range, where neither ever lands.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Low is the lowest port picked: above the local provider's VNC ports
// (15900-16899) and other well-known services.
const Low = 20000

// rangeFile holds the kernel's ephemeral range ("32768	60999").
const rangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// Pick returns a port from Low up to the start of the ephemeral range
// that can be bound on 127.0.0.1 now. When the ephemeral range leaves no
// room below it, it falls back to a port the kernel gives a listener on
// port 0.
func Pick() (int, error) {
	high := ephemeralLow() - 1
	if high-Low < 1000 {
		return kernelPort()
	}
	for range 100 {
		port := Low + rand.IntN(high-Low+1)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port from %d to %d on 127.0.0.1", Low, high)
}

// Addr is Pick as a "127.0.0.1:PORT" address.
func Addr() (string, error) {
	port, err := Pick()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// ephemeralLow is the first port of the kernel's ephemeral range, 32768
// (Linux's default) when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile(rangeFile)
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

func kernelPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
