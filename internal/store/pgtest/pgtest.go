// Package pgtest gives tests a real PostgreSQL: Start runs a throwaway
// server (cmd/withpg uses it for `make test`), and URL hands each test its
// own fresh schema in the server named by TEST_DATABASE_URL.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable that points tests at PostgreSQL.
const EnvURL = "TEST_DATABASE_URL"

const hint = EnvURL + " is not set: run the tests with `make test`, which starts PostgreSQL (or: go run ./cmd/withpg -- go test ./...)"

// URL returns a connection URL for a new, empty schema t_<random> in the
// database named by TEST_DATABASE_URL: its connections have search_path
// set to that schema, so everything a test creates lands there. The schema
// is dropped in tb.Cleanup.
//
// Without TEST_DATABASE_URL the test is skipped, or fails when CI=true: in
// CI a missing database is a failure, never a skip.
func URL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal(hint)
		}
		tb.Skip(hint)
	}
	schema := "t_" + randomHex(8)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := execSQL(ctx, base, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("pgtest: create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := execSQL(ctx, base, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("pgtest: drop schema: %v", err)
		}
	})
	u, err := WithSearchPath(base, schema)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return u
}

// WithSearchPath returns dbURL with the search_path runtime parameter set to
// schema. dbURL must be a URL (postgres://...), not a key=value string.
func WithSearchPath(dbURL, schema string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("%s must be a postgres:// URL", EnvURL)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func execSQL(ctx context.Context, dbURL, sql string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return strings.ToLower(hex.EncodeToString(b))
}
