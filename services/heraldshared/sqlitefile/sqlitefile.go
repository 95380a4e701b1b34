// Package sqlitefile keeps a service's SQLite database private to the user that runs it. The database
// holds API key hashes, approval token hashes and every post; modernc.org/sqlite, like SQLite itself,
// creates it readable by everyone (0644 less the umask), and gives the -wal and -shm files the database
// file's mode.
package sqlitefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Mode is the mode of a database file and its -wal and -shm companions.
const Mode fs.FileMode = 0o600

// Prepare makes the database at path private before SQLite opens it: it creates the file with Mode if it
// does not exist (SQLite then gives the -wal and -shm files the same mode), and takes group and other
// permissions away from the files an earlier version left open to them.
func Prepare(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, Mode)
	if err != nil {
		return fmt.Errorf("sqlite database %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite database %s: %w", path, err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(name, Mode); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sqlite database %s: %w", name, err)
		}
	}
	return nil
}
