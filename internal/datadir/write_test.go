package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFile: the file is replaced whole with the mode asked for, and
// a failed write leaves the old file and no temporary one.
func TestWriteFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	want := func(content string, mode os.FileMode) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil || string(b) != content {
			t.Fatalf("content %q (%v), want %q", b, err, content)
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != mode {
			t.Fatalf("mode %v, want %v", st.Mode().Perm(), mode)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Fatalf("%d files in the directory, want only %s: a temporary file was left", len(ents), path)
		}
	}
	if err := WriteFile(path, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	want("one", 0o644)
	if err := WriteFile(path, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	want("two", 0o600)

	failed := errors.New("cannot prepare")
	if err := writeFile(path, []byte("three"), 0o600, func(string) error { return failed }); !errors.Is(err, failed) {
		t.Fatalf("write with a failing prepare: %v, want %v", err, failed)
	}
	want("two", 0o600)
	if err := WriteFile(filepath.Join(dir, "missing", "x"), []byte("x"), 0o600); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("write into a missing directory: %v, want ErrNotExist", err)
	}
	want("two", 0o600)
}
