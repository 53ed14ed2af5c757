package testcontrolplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// process is one running component.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed when the process has exited
	err     error         // its exit status, once exited is closed
}

// readiness reports nil once a component serves.
type readiness func(ctx context.Context) error

// startReady starts the component that configure describes for two free
// ports, and waits until it is ready. A component that exits first (most
// likely another process took a port between choosing and binding it) is
// started again on new ports, up to three times.
func startReady(ctx context.Context, name, dir string, configure func(port, peerPort int) (bin string, args []string, ready readiness)) (*process, error) {
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}
		bin, args, ready := configure(ports[0], ports[1])
		p, err := startProcess(name, bin, args, filepath.Join(dir, fmt.Sprintf("%s.%d.log", name, attempt)))
		if err != nil {
			return nil, err
		}
		err = p.waitReady(ctx, ready)
		if err == nil {
			return p, nil
		}
		p.stop(5 * time.Second)
		lastErr = err
		if err != errExited {
			break
		}
	}
	return nil, lastErr
}

func startProcess(name, bin string, args []string, logPath string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	detach(cmd)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

// waitReady polls ready until it succeeds, the process exits, startTimeout
// passes or ctx is done. The error carries the end of the component's log.
func (p *process) waitReady(ctx context.Context, ready readiness) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		probeCtx, probeCancel := context.WithTimeout(ctx, 2*time.Second)
		last = ready(probeCtx)
		probeCancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.exited:
			fmt.Fprintf(os.Stderr, "testcontrolplane: %s exited (%v) before it was ready; its log ends:\n%s\n", p.name, p.err, p.logTail())
			return errExited
		case <-ctx.Done():
			return fmt.Errorf("%s not ready (%v, last probe: %v); its log ends:\n%s", p.name, context.Cause(ctx), last, p.logTail())
		case <-tick.C:
		}
	}
}

// logTail returns the end of the component's log.
func (p *process) logTail() string { return fileTail(p.logPath) }

// stop asks the component to stop (SIGTERM) and kills it after timeout.
func (p *process) stop(timeout time.Duration) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// httpReady probes url until it answers 200. With caPEM it checks the
// server's certificate against it; without, a component's self-signed
// certificate is accepted (only the health endpoint is read).
func httpReady(url, token string, caPEM []byte) readiness {
	tlsConfig := &tls.Config{InsecureSkipVerify: caPEM == nil} //nolint:gosec // loopback health probe of a test component
	if caPEM != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		tlsConfig.RootCAs = pool
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
		}
		return nil
	}
}
