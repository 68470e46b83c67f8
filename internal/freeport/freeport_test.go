package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestPick: a picked port is below the ephemeral range and can be bound.
func TestPick(t *testing.T) {
	t.Parallel()
	low := ephemeralLow()
	for range 20 {
		port, err := Pick()
		if err != nil {
			t.Fatal(err)
		}
		if low-Low >= 1000 && (port < Low || port >= low) {
			t.Fatalf("picked %d, want %d to %d", port, Low, low-1)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("picked %d, which cannot be bound: %v", port, err)
		}
		l.Close()
	}
	addr, err := Addr()
	if err != nil {
		t.Fatal(err)
	}
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
		t.Fatalf("Addr() = %q, %v", addr, err)
	}
}
