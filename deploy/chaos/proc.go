package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is one supervised OS process: started again with the same command and environment after the
// harness kills it, and, like a container under a restart policy, after it exits on its own.
type proc struct {
	name string
	bin  string
	args []string
	env  []string
	log  io.Writer

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	down    bool // stopped on purpose: not restarted by the supervisor
	crashes int  // exits the harness did not cause
	starts  int
}

func newProc(name, bin string, args, env []string, log io.Writer) *proc {
	return &proc{name: name, bin: bin, args: args, env: env, log: log}
}

// start runs the process; the supervisor restarts it after an exit the harness did not cause.
func (p *proc) start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.startLocked(ctx)
}

func (p *proc) startLocked(ctx context.Context) error {
	if p.cmd != nil {
		return fmt.Errorf("%s is already running", p.name)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = p.log, p.log
	// Its own process group, so that a Ctrl-C of the harness does not reach it before the harness
	// decides to stop it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.starts++
	fmt.Fprintf(p.log, "### harness: started %s (pid %d)\n", p.name, cmd.Process.Pid)
	p.cmd, p.down = cmd, false
	done := make(chan struct{})
	p.done = done
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		defer p.mu.Unlock()
		close(done)
		if p.cmd != cmd {
			return
		}
		p.cmd = nil
		if p.down || ctx.Err() != nil {
			return
		}
		// An exit nobody asked for: a service that could not reach NATS at start, say. Restarted after
		// a pause, as Kubernetes would (without its growing back-off: the run is short).
		p.crashes++
		fmt.Fprintf(p.log, "### harness: %s exited by itself (%v); restarting in 1s\n", p.name, err)
		go func() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.cmd == nil && !p.down && ctx.Err() == nil {
				if err := p.startLocked(ctx); err != nil {
					fmt.Fprintf(p.log, "### harness: %v\n", err)
				}
			}
		}()
	}()
	return nil
}

// signal sends sig and waits up to wait for the process to exit; it stays down until start.
func (p *proc) signal(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.down = true
	if cmd == nil {
		p.mu.Unlock()
		return nil
	}
	fmt.Fprintf(p.log, "### harness: %v to %s (pid %d)\n", sig, p.name, cmd.Process.Pid)
	err := cmd.Process.Signal(sig)
	p.mu.Unlock()
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	select {
	case <-done:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not exit within %s of %v", p.name, wait, sig)
	}
	p.mu.Lock()
	if p.cmd == cmd {
		p.cmd = nil
	}
	p.mu.Unlock()
	return nil
}

// kill sends SIGKILL: the process dies at whatever line it was on.
func (p *proc) kill() error { return p.signal(syscall.SIGKILL, 10*time.Second) }

// pid is the running process's id, 0 when it is down.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// exitCounts returns how often the process was started and how often it exited on its own.
func (p *proc) counts() (starts, crashes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts, p.crashes
}
