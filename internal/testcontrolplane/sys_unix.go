//go:build unix

package testcontrolplane

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// tryLock takes an exclusive flock on path, creating it, without waiting.
// It returns nil (and no error) when another process holds the lock. The
// lock lasts until every descriptor of the returned file is closed,
// including those a child inherited.
func tryLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, err
	}
	return f, nil
}

// detach puts a component in a process group of its own, so that a
// terminal's interrupt reaches the test binary (which stops the components
// in order) rather than every component at once.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr)
}

// daemonize starts the build in a session of its own: it outlives the test
// binary that started it (go test may kill that at its -timeout), so a long
// first build is not lost and is not started twice.
func daemonize(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }
