package pgtest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// serverDir is a directory for a test's own server (its owner may not be
// the postgres user, so it is open to it); PostgreSQL missing skips the
// test, or fails it under CI.
func serverDir(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(BinDir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is not installed: %v", err)
		}
		t.Skipf("PostgreSQL is not installed: %v", err)
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestStart(t *testing.T) {
	dir := serverDir(t)
	ctx := t.Context()
	start := time.Now()
	srv, err := Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("started in %v at %s", time.Since(start), srv.URL())
	conn, err := pgx.Connect(ctx, srv.URL())
	if err != nil {
		srv.Stop()
		t.Fatal(err)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Errorf("SELECT 1: %d, %v", one, err)
	}
	// A connected client does not hold up the shutdown.
	start = time.Now()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped in %v", time.Since(start))
	if _, err := pgx.Connect(ctx, srv.URL()); err == nil {
		t.Fatal("the server still accepts connections after Stop")
	}
	conn.Close(context.Background())
}

func TestStartUnreachableDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the server to the postgres user")
	}
	_, err := Start(t.Context(), t.TempDir()+"/pg")
	if err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("Start under t.TempDir(): %v, want a clear error", err)
	}
	t.Log(err)
}

func TestWithSearchPath(t *testing.T) {
	got, err := WithSearchPath("postgres://u@h:5/db?sslmode=disable", "t_1")
	if err != nil || got != "postgres://u@h:5/db?search_path=t_1&sslmode=disable" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := WithSearchPath("host=h user=u", "t_1"); err == nil {
		t.Fatal("a key=value string was accepted")
	}
}
