package testcontrolplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// RequireEnv names the environment variable that, set to 1, turns "the
// control plane is unavailable" from a skip into a test failure. CI sets it.
const RequireEnv = "FLEETPACK_REQUIRE_CONTROLPLANE"

// startTimeout bounds how long one component may take to become ready.
const startTimeout = 90 * time.Second

// Options configures a control plane. The zero value runs every component.
type Options struct {
	// WithoutScheduler leaves kube-scheduler out: no pod is bound unless a
	// test binds it.
	WithoutScheduler bool
	// WithoutControllerManager leaves kube-controller-manager out: no
	// ReplicaSets, no garbage collection, and no PodDisruptionBudget status
	// (so every eviction under a budget is refused).
	WithoutControllerManager bool
}

// ControlPlane is a running etcd, kube-apiserver and, unless left out,
// kube-controller-manager and kube-scheduler, on loopback ports.
type ControlPlane struct {
	dir        string
	host       string
	caPEM      []byte
	adminToken string
	kubeconfig string
	procs      []*process // in start order
	stopOnce   sync.Once
}

// Start starts a control plane for t, torn down by t.Cleanup. It skips t
// under -short, and when the binaries cannot be built (fails instead when
// FLEETPACK_REQUIRE_CONTROLPLANE=1). A test package with several such tests
// shares one through Shared instead.
func Start(t testing.TB, opts Options) *ControlPlane {
	t.Helper()
	if testing.Short() {
		t.Skip("the test control plane does not run under -short")
	}
	bins, err := ensureBinaries(t.Context(), testWriter{t}, buildDeadline())
	if err != nil {
		unavailable(t, err)
	}
	cp, err := start(t.Context(), bins, opts, t.TempDir())
	if err != nil {
		t.Fatalf("starting the test control plane: %v", err)
	}
	t.Cleanup(cp.Stop)
	return cp
}

// unavailable skips t, or fails it when RequireEnv is set.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("the test control plane is unavailable and %s=1: %v", RequireEnv, err)
	}
	t.Skipf("the test control plane is unavailable (set %s=1 to fail instead): %v", RequireEnv, err)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Shared is one control plane for a whole test package, started by the first
// test that asks for it and stopped when the package's tests end:
//
//	var controlPlane testcontrolplane.Shared
//
//	func TestMain(m *testing.M) { os.Exit(controlPlane.Main(m)) }
//
//	func TestControlPlaneSomething(t *testing.T) {
//		cp := controlPlane.Get(t)
//		ns := cp.Namespace(t)
//		...
//	}
//
// Tests sharing it isolate themselves by namespace and by object names.
type Shared struct {
	// Options configures the shared control plane.
	Options Options

	mu       sync.Mutex
	built    bool
	bins     binaries
	buildErr error
	cp       *ControlPlane
	startErr error
	dir      string
}

// Main runs the package's tests and stops the control plane afterwards.
// Unless -short is set or -run names no control plane test, it builds the
// binaries before the tests run, so that a first, long build does not count
// against the tests' -timeout.
func (s *Shared) Main(m *testing.M) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	if !testing.Short() && runsControlPlaneTests() {
		s.mu.Lock()
		s.build(context.Background(), os.Stderr)
		s.mu.Unlock()
	}
	code := m.Run()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cp != nil {
		s.cp.Stop()
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
	return code
}

// runsControlPlaneTests reports whether -run may select a TestControlPlane
// test (it is empty or mentions ControlPlane).
func runsControlPlaneTests() bool {
	f := flag.Lookup("test.run")
	if f == nil {
		return true
	}
	pattern := f.Value.String()
	return pattern == "" || strings.Contains(pattern, "ControlPlane")
}

// build builds the binaries unless that is done or failed for good. A build
// still running when this binary's time is up is looked at again later.
func (s *Shared) build(ctx context.Context, progress io.Writer) {
	if s.built {
		return
	}
	s.bins, s.buildErr = ensureBinaries(ctx, progress, buildDeadline())
	var running *stillBuildingError
	s.built = !errors.As(s.buildErr, &running)
}

// processStart is when this test binary started: go test kills it
// -timeout plus a minute later.
var processStart = time.Now()

// buildDeadline is how long this test binary may wait for a build and still
// run its tests within -timeout: zero without a timeout.
func buildDeadline() time.Time {
	f := flag.Lookup("test.timeout")
	if f == nil {
		return time.Time{}
	}
	timeout, err := time.ParseDuration(f.Value.String())
	if err != nil || timeout <= 0 {
		return time.Time{}
	}
	return processStart.Add(timeout - 90*time.Second)
}

// Get returns the package's control plane, starting it on first use. It
// skips or fails t as Start does.
func (s *Shared) Get(t testing.TB) *ControlPlane {
	t.Helper()
	if testing.Short() {
		t.Skip("the test control plane does not run under -short")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.build(t.Context(), testWriter{t})
	if s.buildErr != nil {
		unavailable(t, s.buildErr)
	}
	if s.cp == nil && s.startErr == nil {
		s.dir, s.startErr = os.MkdirTemp("", "fleetpack-controlplane-")
		if s.startErr == nil {
			// The shared control plane outlives the test that started it.
			s.cp, s.startErr = start(context.Background(), s.bins, s.Options, s.dir)
		}
	}
	if s.startErr != nil {
		t.Fatalf("starting the shared test control plane: %v", s.startErr)
	}
	return s.cp
}

// start runs the components in dir, each on free loopback ports, and waits
// until each is ready.
func start(ctx context.Context, bins binaries, opts Options, dir string) (cp *ControlPlane, err error) {
	p, err := generatePKI(dir)
	if err != nil {
		return nil, err
	}
	cp = &ControlPlane{dir: dir, caPEM: p.caPEM, adminToken: randomToken()}
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(cp.adminToken+`,fleetpack-admin,fleetpack-admin,"system:masters"`+"\n"), 0o600); err != nil {
		return nil, err
	}

	var etcdURL string
	etcd, err := startReady(ctx, "etcd", dir, func(port, peer int) (string, []string, readiness) {
		etcdURL = fmt.Sprintf("http://127.0.0.1:%d", port)
		peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
		return bins.etcd, []string{
			"--name=default", "--data-dir=" + filepath.Join(dir, "etcd-data"),
			"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
			"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
			"--initial-cluster=default=" + peerURL,
			// Tests throw the data away: durability buys nothing.
			"--unsafe-no-fsync", "--log-level=warn",
		}, httpReady(etcdURL+"/health", "", nil)
	})
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, etcd)

	apiserver, err := startReady(ctx, "kube-apiserver", dir, func(port, _ int) (string, []string, readiness) {
		cp.host = fmt.Sprintf("https://127.0.0.1:%d", port)
		return bins.apiserver, []string{
			"--etcd-servers=" + etcdURL,
			fmt.Sprintf("--secure-port=%d", port), "--bind-address=127.0.0.1",
			"--cert-dir=" + filepath.Join(dir, "apiserver-certs"),
			"--tls-cert-file=" + p.servingCert, "--tls-private-key-file=" + p.servingKey,
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + p.serviceAccountKey,
			"--service-account-signing-key-file=" + p.serviceAccountKey,
			"--token-auth-file=" + tokens,
			"--authorization-mode=RBAC",
			"--service-cluster-ip-range=10.0.0.0/24",
			// Pods need no "default" ServiceAccount to exist first, so a
			// test's fresh namespace takes pods at once (TokenRequest
			// still works).
			"--disable-admission-plugins=ServiceAccount",
			// The kubernetes Service's endpoints cannot be a loopback
			// address; nothing in the tests needs them.
			"--endpoint-reconciler-type=none",
			"--enable-priority-and-fairness=false",
			"--profiling=false",
		}, httpReady(cp.host+"/readyz", cp.adminToken, cp.caPEM)
	})
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, apiserver)

	cp.kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := cp.writeKubeconfig(cp.kubeconfig); err != nil {
		return nil, err
	}
	if !opts.WithoutControllerManager {
		kcm, err := startReady(ctx, "kube-controller-manager", dir, func(port, _ int) (string, []string, readiness) {
			return bins.controllerManager, []string{
				"--kubeconfig=" + cp.kubeconfig,
				// Tokens come from the TokenRequest API; the legacy
				// token controller would need a signing key.
				"--controllers=*,-serviceaccount-token",
				"--use-service-account-credentials=false",
				"--leader-elect=false",
				fmt.Sprintf("--secure-port=%d", port), "--bind-address=127.0.0.1",
				"--root-ca-file=" + filepath.Join(dir, "ca.crt"),
				"--service-cluster-ip-range=10.0.0.0/24",
				"--profiling=false",
			}, httpReady(fmt.Sprintf("https://127.0.0.1:%d/healthz", port), "", nil)
		})
		if err != nil {
			return nil, err
		}
		cp.procs = append(cp.procs, kcm)
	}
	if !opts.WithoutScheduler {
		sched, err := startReady(ctx, "kube-scheduler", dir, func(port, _ int) (string, []string, readiness) {
			return bins.scheduler, []string{
				"--kubeconfig=" + cp.kubeconfig,
				"--leader-elect=false",
				fmt.Sprintf("--secure-port=%d", port), "--bind-address=127.0.0.1",
				"--profiling=false",
			}, httpReady(fmt.Sprintf("https://127.0.0.1:%d/healthz", port), "", nil)
		})
		if err != nil {
			return nil, err
		}
		cp.procs = append(cp.procs, sched)
	}
	return cp, nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Stop stops the components, newest first. It is safe to call twice.
func (c *ControlPlane) Stop() {
	c.stopOnce.Do(func() {
		for i := len(c.procs) - 1; i >= 0; i-- {
			c.procs[i].stop(10 * time.Second)
		}
	})
}

// AdminConfig returns a config for an administrator (group system:masters).
// Each call returns a new copy the caller may change.
func (c *ControlPlane) AdminConfig() *rest.Config {
	return c.configWithToken(c.adminToken)
}

func (c *ControlPlane) configWithToken(token string) *rest.Config {
	return &rest.Config{
		Host:            c.host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: append([]byte(nil), c.caPEM...)},
		// Tests create objects in bursts; client-side throttling would
		// only slow them down.
		QPS: 200, Burst: 400,
	}
}

// Client returns an administrator's clientset.
func (c *ControlPlane) Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(c.AdminConfig())
	if err != nil {
		t.Fatalf("building a client for the test control plane: %v", err)
	}
	return client
}

// Kubeconfig is the path of an administrator's kubeconfig file.
func (c *ControlPlane) Kubeconfig() string { return c.kubeconfig }

func (c *ControlPlane) writeKubeconfig(path string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: c.host, CertificateAuthorityData: c.caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: c.adminToken}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin"}
	cfg.CurrentContext = "test"
	return clientcmd.WriteToFile(*cfg, path)
}

// ServiceAccountConfig returns a config that authenticates as the
// ServiceAccount namespace/name (created, with its namespace, if missing)
// with a token from the TokenRequest API. It holds only what RBAC grants that
// ServiceAccount.
func (c *ControlPlane) ServiceAccountConfig(t testing.TB, namespace, name string) *rest.Config {
	t.Helper()
	ctx := t.Context()
	client := c.Client(t)
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", namespace, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if _, err := client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating ServiceAccount %s/%s: %v", namespace, name, err)
	}
	expiry := int64(time.Hour / time.Second)
	tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token for ServiceAccount %s/%s: %v", namespace, name, err)
	}
	return c.configWithToken(tr.Status.Token)
}

var notDNS = regexp.MustCompile(`[^a-z0-9]+`)

// Namespace creates a namespace of t's own, named after the test, and
// deletes it when t ends.
func (c *ControlPlane) Namespace(t testing.TB) string {
	t.Helper()
	prefix := strings.Trim(notDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(prefix) > 40 {
		prefix = prefix[len(prefix)-40:]
	}
	client := c.Client(t)
	ns, err := client.CoreV1().Namespaces().Create(t.Context(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: strings.TrimLeft(prefix, "-") + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a namespace for %s: %v", t.Name(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Logf("deleting namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

// errExited says a component exited before it became ready.
var errExited = errors.New("exited before it was ready")
