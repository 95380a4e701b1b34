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

	"golang.org/x/sys/unix"
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

// ErrLocked is returned by Lock when another process holds the database.
var ErrLocked = errors.New("the SQLite database is in use by another process")

// Lock holds a database for this process: SQLite is Herald's single-node store, and a second process
// (a second replica pointed at the same data directory) writing beside the first would make both break
// the once-only guarantees the store's claims rest on. It is an OS lock (flock) on <path>.lock, so a
// process that dies, however it dies, lets go of it.
type Lock struct {
	f *os.File
}

// Acquire takes the lock of the database at path without waiting: ErrLocked, saying what to do, when
// another process has it.
func Acquire(path string) (*Lock, error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, Mode)
	if err != nil {
		return nil, fmt.Errorf("sqlite lock %s: %w", name, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked (%s). SQLite serves one process only: stop the other one, "+
				"give this one its own HERALD_DATA_DIR, or run several replicas on PostgreSQL (HERALD_DATABASE_URL)", ErrLocked, path, name)
		}
		return nil, fmt.Errorf("sqlite lock %s: %w", name, err)
	}
	return &Lock{f: f}, nil
}

// Release lets another process open the database. The lock file stays: removing it would let a process
// that opened it before the removal and one that creates it afresh both hold "the" lock.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	return err
}
