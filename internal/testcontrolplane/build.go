package testcontrolplane

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Versions of the components the control plane runs.
const (
	// KubernetesVersion is the version of kube-apiserver,
	// kube-controller-manager and kube-scheduler (module k8s.io/kubernetes).
	KubernetesVersion = "v1.37.2"
	// kubernetesStagingVersion is the version the staging modules
	// (k8s.io/api, k8s.io/client-go, ...) are published at for
	// KubernetesVersion.
	kubernetesStagingVersion = "v0.37.2"
	// EtcdVersion is the version of etcd (module go.etcd.io/etcd/server/v3).
	EtcdVersion = "v3.6.13"
)

// CacheDirEnv names the environment variable that overrides where the
// binaries are built and kept.
const CacheDirEnv = "FLEETPACK_CONTROLPLANE_CACHE"

// binaries are the paths of the built components.
type binaries struct {
	etcd, apiserver, controllerManager, scheduler string
}

func (b binaries) all() []string {
	return []string{b.etcd, b.apiserver, b.controllerManager, b.scheduler}
}

// cacheDir is where the binaries of these versions live, shared by runs.
func cacheDir() (string, error) {
	if dir := os.Getenv(CacheDirEnv); dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding a cache directory for the control plane (set %s): %w", CacheDirEnv, err)
	}
	return filepath.Join(base, "fleetpack", "controlplane-"+KubernetesVersion+"-etcd"+EtcdVersion), nil
}

// ensureBinaries returns the built components, building them first if this
// cache has none, waiting at most until deadline (zero: no limit).
//
// The build runs as a process of its own that outlives this one: a cold
// build takes longer than go test's default -timeout allows a test binary,
// and killing the binary must not lose the build. An exclusive lock on the
// cache directory, handed to the build process, makes test packages running
// at once build only once; the others wait for the lock and then find the
// binaries. Progress goes to progress.
func ensureBinaries(ctx context.Context, progress io.Writer, deadline time.Time) (binaries, error) {
	dir, err := cacheDir()
	if err != nil {
		return binaries{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return binaries{}, fmt.Errorf("creating the control plane cache %s: %w", dir, err)
	}
	bin := filepath.Join(dir, "bin")
	b := binaries{
		etcd:              filepath.Join(bin, "etcd"),
		apiserver:         filepath.Join(bin, "kube-apiserver"),
		controllerManager: filepath.Join(bin, "kube-controller-manager"),
		scheduler:         filepath.Join(bin, "kube-scheduler"),
	}
	// The marker is written only after every build succeeded, so a build
	// killed halfway is redone rather than trusted.
	marker := filepath.Join(bin, ".complete")
	logPath := filepath.Join(dir, "build.log")
	started, waiting := false, false
	begin := time.Now()
	for {
		lock, err := tryLock(filepath.Join(dir, "lock"))
		if err != nil {
			return binaries{}, fmt.Errorf("locking the control plane cache %s: %w", dir, err)
		}
		if lock != nil {
			if complete(marker, b) {
				lock.Close()
				if started || waiting {
					fmt.Fprintf(progress, "testcontrolplane: the control plane binaries are ready after %s\n", time.Since(begin).Round(time.Second))
				}
				return b, nil
			}
			if started {
				lock.Close()
				return binaries{}, fmt.Errorf("building the control plane failed; the end of %s:\n%s", logPath, fileTail(logPath))
			}
			fmt.Fprintf(progress, "testcontrolplane: building etcd %s and Kubernetes %s into %s, once per cache (about 10-15 minutes on 2 cores when nothing is cached); log in %s\n",
				EtcdVersion, KubernetesVersion, bin, logPath)
			err := startBuild(ctx, dir, bin, marker, logPath, lock)
			// The build process holds the lock now; this process lets go
			// of its descriptor without unlocking.
			lock.Close()
			if err != nil {
				return binaries{}, err
			}
			started = true
		} else if !waiting && !started {
			fmt.Fprintf(progress, "testcontrolplane: waiting for another process building the control plane into %s (log in %s)\n", bin, logPath)
			waiting = true
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return binaries{}, &stillBuildingError{bin: bin, logPath: logPath}
		}
		select {
		case <-ctx.Done():
			return binaries{}, context.Cause(ctx)
		case <-time.After(time.Second):
		}
	}
}

// stillBuildingError says the build did not end within this test binary's
// time. It goes on in the background.
type stillBuildingError struct{ bin, logPath string }

func (e *stillBuildingError) Error() string {
	return fmt.Sprintf("the control plane is still being built into %s, past what this test binary's -timeout allows; the build goes on in the background (log in %s): run the tests again when it is done", e.bin, e.logPath)
}

// startBuild generates the two throwaway modules in dir and starts the
// process that tidies and builds them into bin and writes marker, in a
// session of its own, holding lock.
func startBuild(ctx context.Context, dir, bin, marker, logPath string, lock *os.File) error {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building the control plane needs the go command: %w", err)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	g := &goBuilder{goCmd: goCmd, log: logFile, logPath: logPath}
	kubeDir, etcdDir := filepath.Join(dir, "kubernetes"), filepath.Join(dir, "etcd")
	if err := g.kubernetesModule(ctx, kubeDir); err != nil {
		return err
	}
	if err := g.etcdModule(etcdDir); err != nil {
		return err
	}
	_ = os.Remove(marker)
	script := strings.Join([]string{
		"set -eu",
		"export GOWORK=off",
		fmt.Sprintf("cd %s", shellQuote(kubeDir)),
		"echo \"== $(date -u +%T) go mod tidy (kubernetes)\"",
		shellQuote(goCmd) + " mod tidy",
		"echo \"== $(date -u +%T) go build (kubernetes)\"",
		fmt.Sprintf("%s build -o %s k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler",
			shellQuote(goCmd), shellQuote(bin+string(filepath.Separator))),
		fmt.Sprintf("cd %s", shellQuote(etcdDir)),
		"echo \"== $(date -u +%T) go mod tidy (etcd)\"",
		shellQuote(goCmd) + " mod tidy",
		"echo \"== $(date -u +%T) go build (etcd)\"",
		fmt.Sprintf("%s build -o %s .", shellQuote(goCmd), shellQuote(filepath.Join(bin, "etcd"))),
		fmt.Sprintf("echo %s > %s", shellQuote(KubernetesVersion+" "+EtcdVersion), shellQuote(marker)),
		"echo \"== $(date -u +%T) done\"",
	}, "\n")
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The lock travels with the build (as descriptor 3): it stays held
	// until the build ends, whatever happens to this process.
	cmd.ExtraFiles = []*os.File{lock}
	daemonize(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the control plane build: %w", err)
	}
	// Reap it if it ends while this process lives; it runs on otherwise.
	go func() { _ = cmd.Wait() }()
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// fileTail returns the last few KiB of the file at path.
func fileTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const tail = 4 << 10
	if len(data) > tail {
		data = data[len(data)-tail:]
	}
	return string(data)
}

func complete(marker string, b binaries) bool {
	if _, err := os.Stat(marker); err != nil {
		return false
	}
	for _, p := range b.all() {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// goBuilder runs go commands in generated modules, logging their output.
type goBuilder struct {
	goCmd   string
	log     io.Writer
	logPath string
}

func (g *goBuilder) run(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, g.goCmd, args...)
	cmd.Dir = dir
	// The generated modules stand alone: no workspace of the caller's.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = g.log
	fmt.Fprintf(g.log, "== (cd %s && go %s)\n", dir, strings.Join(args, " "))
	start := time.Now()
	err := cmd.Run()
	fmt.Fprintf(g.log, "== took %s, error %v\n", time.Since(start).Round(time.Second), err)
	if err != nil {
		return nil, fmt.Errorf("go %s in %s failed (see %s): %w", strings.Join(args, " "), dir, g.logPath, err)
	}
	return stdout.Bytes(), nil
}

// kubernetesModulePath is the path of the throwaway module kube-apiserver and its peers are
// built from. Its path and contents must stay as they are: an identical
// module resolves identical dependency versions, so its packages hit the Go
// build cache of any earlier build of it.
const kubernetesModulePath = "fleetpack.test/controlplane"

const kubernetesTools = `//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
`

// stagingReplace matches kubernetes' replace lines for its staging modules,
// e.g. "k8s.io/api => ./staging/src/k8s.io/api".
var stagingReplace = regexp.MustCompile(`^\s*(k8s\.io/\S+)\s+=>\s+\./staging/`)

// kubernetesModule generates in modDir the module the three Kubernetes
// binaries are built from. k8s.io/kubernetes cannot be `go install`ed: its
// go.mod replaces each staging module with a directory of its own
// repository. This module requires it and replaces each staging module with
// the same module as published.
func (g *goBuilder) kubernetesModule(ctx context.Context, modDir string) error {
	if err := os.MkdirAll(modDir, 0o755); err != nil {
		return err
	}
	header := "module " + kubernetesModulePath + "\n\ngo 1.26.0\n"
	if err := os.WriteFile(filepath.Join(modDir, "go.mod"), []byte(header), 0o644); err != nil {
		return err
	}
	_ = os.Remove(filepath.Join(modDir, "go.sum"))
	out, err := g.run(ctx, modDir, "mod", "download", "-json", "k8s.io/kubernetes@"+KubernetesVersion)
	if err != nil {
		return err
	}
	var downloaded struct{ GoMod string }
	if err := json.Unmarshal(out, &downloaded); err != nil || downloaded.GoMod == "" {
		return fmt.Errorf("reading where k8s.io/kubernetes@%s's go.mod is: %q: %v", KubernetesVersion, out, err)
	}
	staging, err := stagingModules(downloaded.GoMod)
	if err != nil {
		return err
	}
	var mod strings.Builder
	mod.WriteString(header)
	fmt.Fprintf(&mod, "\nrequire k8s.io/kubernetes %s\n\nreplace (\n", KubernetesVersion)
	for _, m := range staging {
		fmt.Fprintf(&mod, "\t%s => %s %s\n", m, m, kubernetesStagingVersion)
	}
	mod.WriteString(")\n")
	if err := os.WriteFile(filepath.Join(modDir, "go.mod"), []byte(mod.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(modDir, "tools.go"), []byte(kubernetesTools), 0o644)
}

// stagingModules returns the module paths kubernetes' go.mod at path
// replaces with its staging directories.
func stagingModules(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mods []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := stagingReplace.FindStringSubmatch(sc.Text()); m != nil {
			mods = append(mods, m[1])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(mods) == 0 {
		return nil, errors.New("k8s.io/kubernetes' go.mod " + path + " names no staging modules")
	}
	return mods, nil
}

const etcdMain = `// Command etcd is etcd's server, built for fleetpack's tests.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
`

// etcdModule generates in modDir a module with a main of its own for
// etcd's server (etcd's own command lives in a module not meant to be
// required).
func (g *goBuilder) etcdModule(modDir string) error {
	if err := os.MkdirAll(modDir, 0o755); err != nil {
		return err
	}
	mod := fmt.Sprintf("module fleetpack.test/etcd\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n", EtcdVersion)
	if err := os.WriteFile(filepath.Join(modDir, "go.mod"), []byte(mod), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(modDir, "main.go"), []byte(etcdMain), 0o644)
}
