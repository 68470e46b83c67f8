package datadir

import (
	"os"
	"path/filepath"
)

// WriteFile replaces path with data, readable as perm says (the umask
// does not apply): it writes a temporary file beside path, syncs it and
// renames it over path, so that a crash leaves the old content or the
// new, never a torn file. On error path is unchanged and no temporary
// file is left; the error is the os package's, naming the file.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return writeFile(path, data, perm, nil)
}

// writeFile is WriteFile, running prepare (when not nil) on the
// temporary file's name just before the rename.
func writeFile(path string, data []byte, perm os.FileMode, prepare func(tmp string) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, fails harmlessly
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if prepare != nil {
		if err := prepare(tmp.Name()); err != nil {
			return err
		}
	}
	return os.Rename(tmp.Name(), path)
}
