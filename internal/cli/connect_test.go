package cli

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"lobby/internal/syncbuf"
)

func TestConnect(t *testing.T) {
	t.Parallel()
	b := setup(t).loggedIn(t, userToken)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	pr, pw := io.Pipe()
	var errOut syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"connect", "demo"}, Env{
			Stdout: pw, Stderr: &errOut, Getenv: func(string) string { return "" }, ConfigDir: b.dir,
		})
		pw.Close()
	}()
	out := bufio.NewReader(pr)
	var addr string
	for addr == "" {
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("connect ended before printing an address: %v; stderr: %s", err, errOut.String())
		}
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "vnc://"); ok {
			addr = a
		}
	}
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(out); rest <- string(b) }()

	// Two viewers in turn: each gets a fresh ticket and an RFB stream.
	for i := range 2 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		greeting := make([]byte, 12)
		if _, err := io.ReadFull(conn, greeting); err != nil || string(greeting) != "RFB 003.008\n" {
			t.Fatalf("viewer %d: greeting %q, %v; stderr: %s", i, greeting, err, errOut.String())
		}
		msg := []byte(strings.Repeat("pixels", 10000))
		go conn.Write(msg)
		echo := make([]byte, len(msg))
		if _, err := io.ReadFull(conn, echo); err != nil || !bytes.Equal(echo, msg) {
			t.Fatalf("viewer %d: echo: %v", i, err)
		}
		if i == 1 {
			break // leave the second viewer connected: cancel must close it
		}
		conn.Close()
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d; stderr: %s", code, errOut.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("connect did not end after cancel")
	}
	if s := <-rest; !strings.Contains(s, "Released desktop demo-1.") {
		t.Errorf("stdout after cancel: %q", s)
	}
	connects, released, _, _, _ := b.api.snapshot()
	if connects != 3 || !reflect.DeepEqual(released, []string{desktop1.ID}) {
		t.Errorf("connects %d (want 1 + one per viewer), released %v", connects, released)
	}
}
