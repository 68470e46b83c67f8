package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPause: a paused server answers nothing, neither an open connection
// nor a new one; resumed, it answers again.
func TestPause(t *testing.T) {
	dir := serverDir(t)
	srv, err := Start(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Resume(); srv.Stop() })
	conn, err := pgx.Connect(t.Context(), srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err == nil {
		t.Error("a paused server answered a query")
	}
	if c, err := pgx.Connect(ctx, srv.URL()); err == nil {
		c.Close(context.Background())
		t.Error("a paused server took a new connection")
	}
	cancel()
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(t.Context(), srv.URL())
	if err != nil {
		t.Fatalf("connect after Resume: %v", err)
	}
	defer c.Close(context.Background())
	if err := c.QueryRow(t.Context(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 after Resume: %d, %v", one, err)
	}
}
