package sqlitefile_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald/services/heraldshared/sqlitefile"
)

// childEnv makes the test binary, run as a child, take the lock of the database it names, say so on
// stdout and hold it until its stdin closes or it is killed: a second process, as a second replica is.
const childEnv = "HERALD_SQLITEFILE_LOCK_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		l, err := sqlitefile.Acquire(path)
		if err != nil {
			fmt.Println("refused:", err)
			os.Exit(3)
		}
		fmt.Println("locked")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		_ = l.Release()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child starts the test binary as a second process on path and returns its first line of output.
func child(t *testing.T, path string) (*exec.Cmd, string, func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	stop := func() { stdin.Close(); _ = cmd.Wait() }
	t.Cleanup(func() { _ = cmd.Process.Kill(); stop() })
	return cmd, strings.TrimSpace(line), stop
}

func TestASecondProcessIsRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "approval.db")
	l, err := sqlitefile.Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd, line, _ := child(t, path)
	for _, want := range []string{"refused:", "in use by another process", "HERALD_DATABASE_URL", path} {
		if !strings.Contains(line, want) {
			t.Errorf("second process said %q; want it to contain %q", line, want)
		}
	}
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Errorf("second process exited %d, want the refusal (3)", code)
	}
	// Released, the database opens in another process.
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, line, stop := child(t, path); line != "locked" {
		t.Errorf("after the release the other process said %q, want locked", line)
	} else {
		stop()
	}
}

func TestAKilledHolderLetsGo(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "publisher.db")
	cmd, line, _ := child(t, path)
	if line != "locked" {
		t.Fatalf("child said %q", line)
	}
	if _, err := sqlitefile.Acquire(path); !errors.Is(err, sqlitefile.ErrLocked) {
		t.Fatalf("Acquire while another process holds it = %v, want ErrLocked", err)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no chance to release anything
		t.Fatal(err)
	}
	_ = cmd.Wait()
	l, err := sqlitefile.Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after the holder was killed: %v", err)
	}
	_ = l.Release()
}

func TestReleaseIsIdempotent(t *testing.T) {
	t.Parallel()
	l, err := sqlitefile.Acquire(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
}
