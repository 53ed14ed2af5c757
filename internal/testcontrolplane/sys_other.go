//go:build !unix

package testcontrolplane

import (
	"errors"
	"os"
	"os/exec"
)

func tryLock(string) (*os.File, error) {
	return nil, errors.New("the test control plane needs a unix system (flock)")
}

func detach(*exec.Cmd)    {}
func daemonize(*exec.Cmd) {}
