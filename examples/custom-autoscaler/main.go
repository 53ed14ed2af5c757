// Command custom-autoscaler shows how to embed fleetpack in your own control
// loop against a real cluster: client-go for the cluster, the EC2 cloud
// provider, and an SQS queue of EventBridge interruption notices. It is a
// short program on purpose: the wiring below is all an autoscaler needs.
//
//	go run ./examples/custom-autoscaler \
//	    -cluster-name prod -region us-east-1 \
//	    -nodepools nodepools.yaml \
//	    -subnet-selector karpenter.sh/discovery=prod \
//	    -launch-template-amd64 prod-nodes-amd64 -launch-template-arm64 prod-nodes-arm64 \
//	    -queue https://sqs.us-east-1.amazonaws.com/123456789012/prod-interruptions
//
// With -dry-run it launches nothing and needs no AWS credentials: it reads
// the cluster's pending pods and nodes, solves, and prints the plan it would
// carry out, once per change (or once with -once). The NodePools file holds
// fleetpack.dev/v1 NodePool documents.
//
// What runs (live mode), each until the process is interrupted:
//
//   - provisioning.Provisioner.Run: batches pending pods, solves, launches
//     through the EC2 provider, nominates pods, removes empty nodes;
//   - interruption.Handler.Run: cordons, replaces and drains nodes named in
//     notices, and marks interrupted Spot pools unavailable;
//   - interruption.SQSSource.Run: feeds the handler from the queue;
//   - a Prometheus /metrics endpoint.
//
// Two replicas may run: with leader election (on by default, -leader-elect)
// only the replica holding the Lease fleetpack/fleetpack runs the
// provisioner, the handler and the SQS source; the other waits, and takes
// over within the lease duration plus 2 s when the leader dies. The work a
// dead leader left half done is recorded in the cluster (nominations, the
// nodes' interruption records), so nothing is launched twice and no notice
// is lost. A replica that loses the Lease exits with an error, to be
// restarted. deploy/rbac.yaml holds the RBAC it needs.
//
// The Kubernetes credentials come from -kubeconfig, $KUBECONFIG, or the
// in-cluster service account; the AWS ones from the SDK's default chain.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fleetpack/fleetpack/cloudprovider/aws"
	"github.com/fleetpack/fleetpack/deploy"
	"github.com/fleetpack/fleetpack/interruption"
	"github.com/fleetpack/fleetpack/leader"
	"github.com/fleetpack/fleetpack/offerings"
	"github.com/fleetpack/fleetpack/provisioning"
	"github.com/fleetpack/fleetpack/provisioning/kubecluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, newKubeClient))
}

// config is the parsed command line.
type config struct {
	kubeconfig     string
	clusterName    string
	region         string
	nodePoolsFile  string
	subnetSelector map[string]string
	launchTemplate map[string]aws.LaunchTemplate
	queueURL       string
	metricsAddr    string
	dryRun         bool
	once           bool
	verbose        bool
	leaderElect    bool
	leaseNamespace string
	leaseIdentity  string
	leaseDuration  time.Duration
	renewDeadline  time.Duration
	retryPeriod    time.Duration
}

// parseFlags reads args; every problem is reported at once, naming the flag.
func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("custom-autoscaler", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{launchTemplate: map[string]aws.LaunchTemplate{}}
	fs.StringVar(&c.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file (default $KUBECONFIG, else in-cluster)")
	fs.StringVar(&c.clusterName, "cluster-name", "", "cluster name, tagged on every instance (required unless -dry-run)")
	fs.StringVar(&c.region, "region", "us-east-1", "AWS region")
	fs.StringVar(&c.nodePoolsFile, "nodepools", "", "YAML file of fleetpack.dev/v1 NodePools (required)")
	subnets := fs.String("subnet-selector", "", "comma-separated tag=value pairs selecting the nodes' subnets (required unless -dry-run)")
	amd64 := fs.String("launch-template-amd64", "", "launch template name for amd64 nodes")
	arm64 := fs.String("launch-template-arm64", "", "launch template name for arm64 nodes")
	fs.StringVar(&c.queueURL, "queue", "", "SQS queue URL of EventBridge interruption events (optional; without it no notices are handled)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", ":8080", "address of the Prometheus /metrics endpoint (empty: none)")
	fs.BoolVar(&c.dryRun, "dry-run", false, "print the plans, launch nothing; needs no AWS credentials")
	fs.BoolVar(&c.once, "once", false, "with -dry-run: print one plan and exit")
	fs.BoolVar(&c.verbose, "v", false, "debug logs")
	fs.BoolVar(&c.leaderElect, "leader-elect", true, "run the provisioner, handler and queue only while holding the Lease (false: a single replica that always acts)")
	fs.StringVar(&c.leaseNamespace, "leader-election-namespace", deploy.Namespace, "namespace of the Lease "+leader.DefaultLeaseName)
	fs.StringVar(&c.leaseIdentity, "leader-election-id", "", "this replica's name in the Lease (default: host name and a random suffix)")
	fs.DurationVar(&c.leaseDuration, "leader-election-lease-duration", leader.DefaultLeaseDuration, "how long a dead leader holds the Lease")
	fs.DurationVar(&c.renewDeadline, "leader-election-renew-deadline", leader.DefaultRenewDeadline, "how long the leader tries to renew before it stops acting")
	fs.DurationVar(&c.retryPeriod, "leader-election-retry-period", leader.DefaultRetryPeriod, "how often the leader renews and followers try to acquire")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if c.nodePoolsFile == "" {
		errs = append(errs, errors.New("-nodepools: required"))
	}
	if *subnets != "" {
		sel, err := parseSelector(*subnets)
		if err != nil {
			errs = append(errs, fmt.Errorf("-subnet-selector: %w", err))
		}
		c.subnetSelector = sel
	}
	if *amd64 != "" {
		c.launchTemplate["amd64"] = aws.LaunchTemplate{Name: *amd64}
	}
	if *arm64 != "" {
		c.launchTemplate["arm64"] = aws.LaunchTemplate{Name: *arm64}
	}
	if c.once && !c.dryRun {
		errs = append(errs, errors.New("-once: only with -dry-run"))
	}
	if !c.dryRun {
		if c.clusterName == "" {
			errs = append(errs, errors.New("-cluster-name: required"))
		}
		if len(c.subnetSelector) == 0 {
			errs = append(errs, errors.New("-subnet-selector: required"))
		}
		if len(c.launchTemplate) == 0 {
			errs = append(errs, errors.New("-launch-template-amd64 or -launch-template-arm64: at least one is required"))
		}
	}
	return c, errors.Join(errs...)
}

// parseSelector parses "k=v,k2=v2".
func parseSelector(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%q is not tag=value", pair)
		}
		out[k] = v
	}
	return out, nil
}

// kubeClientFunc builds the Kubernetes client; tests pass a fake.
type kubeClientFunc func(kubeconfig string) (kubernetes.Interface, error)

func newKubeClient(kubeconfig string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config: %w", err)
	}
	return kubernetes.NewForConfig(cfg)
}

// run is the program; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, newClient kubeClientFunc) int {
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "custom-autoscaler: %v\n", err)
		return 2
	}
	level := slog.LevelInfo
	if c.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := start(ctx, c, stdout, logger, newClient); err != nil {
		fmt.Fprintf(stderr, "custom-autoscaler: %v\n", err)
		return 1
	}
	return 0
}

func start(ctx context.Context, c *config, stdout io.Writer, logger *slog.Logger, newClient kubeClientFunc) error {
	data, err := os.ReadFile(c.nodePoolsFile)
	if err != nil {
		return fmt.Errorf("-nodepools: %w", err)
	}
	pools, err := provisioning.ParseNodePools(data)
	if err != nil {
		return fmt.Errorf("-nodepools %s: %w", c.nodePoolsFile, err)
	}
	if len(pools) == 0 {
		return fmt.Errorf("-nodepools %s: no NodePool in the file", c.nodePoolsFile)
	}
	client, err := newClient(c.kubeconfig)
	if err != nil {
		return err
	}
	cluster, err := kubecluster.New(client, kubecluster.Options{Logger: logger})
	if err != nil {
		return err
	}
	if err := cluster.Start(ctx); err != nil {
		return err
	}
	if c.dryRun {
		catalog, err := offerings.DefaultCatalog(offerings.CatalogOptions{})
		if err != nil {
			return err
		}
		return dryRun(ctx, cluster, pools, catalog, c.once, stdout)
	}
	return live(ctx, c, client, cluster, pools, logger)
}

// awsAPIs are the AWS services the autoscaler calls; tests pass fakes.
type awsAPIs struct {
	ec2 aws.EC2API
	// sqs is nil when no queue is configured.
	sqs interruption.SQSAPI
}

// live connects to AWS and runs the autoscaler until ctx is done.
func live(ctx context.Context, c *config, client kubernetes.Interface, cluster *kubecluster.Cluster, pools []*provisioning.NodePool, logger *slog.Logger) error {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(c.region),
		awsconfig.WithRetryMode(awssdk.RetryModeAdaptive), awsconfig.WithRetryMaxAttempts(8))
	if err != nil {
		return fmt.Errorf("AWS config: %w", err)
	}
	apis := awsAPIs{ec2: ec2.NewFromConfig(awsCfg)}
	if c.queueURL != "" {
		apis.sqs = sqs.NewFromConfig(awsCfg)
	}
	return runAutoscaler(ctx, c, client, cluster, pools, apis, logger)
}

// runAutoscaler runs the provisioner, the interruption handler and its SQS
// source, under leader election unless it is turned off, and the metrics
// endpoint, until ctx is done. A follower runs only the metrics endpoint
// (and the cluster's informers, started by the caller): its source receives
// nothing, so every notice goes to the leader.
func runAutoscaler(ctx context.Context, c *config, client kubernetes.Interface, cluster provisioning.Cluster, pools []*provisioning.NodePool, apis awsAPIs, logger *slog.Logger) error {
	catalog, err := aws.NewAPICatalog(apis.ec2, aws.APICatalogOptions{Region: c.region})
	if err != nil {
		return err
	}
	// One unavailable-offerings cache: the provider marks what EC2 refuses,
	// the handler marks interrupted Spot pools, the solver avoids both.
	unavailable := offerings.NewUnavailableOfferings(offerings.UnavailableOfferingsOptions{Logger: logger})
	provider, err := aws.New(apis.ec2, aws.Options{
		ClusterName: c.clusterName, Region: c.region,
		LaunchTemplates: c.launchTemplate, SubnetSelector: c.subnetSelector,
		Catalog: catalog, Unavailable: unavailable, Logger: logger,
	})
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	provMetrics, err := provisioning.NewMetrics(reg)
	if err != nil {
		return err
	}
	intMetrics, err := interruption.NewMetrics(reg)
	if err != nil {
		return err
	}
	prov, err := provisioning.New(cluster, provider, pools, provisioning.Options{Logger: logger, Metrics: provMetrics})
	if err != nil {
		return err
	}
	handler, err := interruption.NewHandler(interruption.HandlerOptions{
		Cluster: cluster, CloudProvider: provider, Replacer: interruption.ProvisionerReplacer{Provisioner: prov},
		Unavailable: unavailable, Logger: logger, Metrics: intMetrics,
	})
	if err != nil {
		return err
	}
	var src *interruption.SQSSource
	if apis.sqs != nil {
		src, err = interruption.NewSQSSource(apis.sqs, interruption.SQSOptions{QueueURL: c.queueURL, Logger: logger, Metrics: intMetrics})
		if err != nil {
			return err
		}
	} else {
		logger.Warn("no -queue: interruption notices are not handled")
	}

	// act is what only the leader runs. The first component to fail stops
	// the others: a half-running autoscaler is worse than a restarted one.
	act := func(ctx context.Context) error {
		g := newGroup(ctx)
		g.run("provisioner", prov.Run)
		g.run("interruption handler", handler.Run)
		if src != nil {
			g.run("SQS source", func(ctx context.Context) error { return src.Run(ctx, handler.Handle) })
		}
		return g.wait()
	}
	g := newGroup(ctx)
	if c.metricsAddr != "" {
		srv := &http.Server{Addr: c.metricsAddr, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		g.run("metrics server", func(ctx context.Context) error {
			go func() {
				<-ctx.Done()
				shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(shutdown)
			}()
			if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	if c.leaderElect {
		g.run("leader election", func(ctx context.Context) error {
			return leader.Run(ctx, leader.Options{
				Client: client, Namespace: c.leaseNamespace, Identity: c.leaseIdentity,
				LeaseDuration: c.leaseDuration, RenewDeadline: c.renewDeadline, RetryPeriod: c.retryPeriod,
				Logger: logger,
			}, act)
		})
	} else {
		g.run("autoscaler", act)
	}
	logger.Info("fleetpack running", "cluster", c.clusterName, "region", c.region, "nodePools", len(pools), "leaderElection", c.leaderElect)
	return g.wait()
}

// group runs functions until the first fails or its context ends, then
// stops the others and joins their errors.
type group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

func newGroup(ctx context.Context) *group {
	ctx, cancel := context.WithCancel(ctx)
	return &group{ctx: ctx, cancel: cancel}
}

func (g *group) run(name string, f func(context.Context) error) {
	g.wg.Go(func() {
		if err := f(g.ctx); err != nil {
			g.mu.Lock()
			g.errs = append(g.errs, fmt.Errorf("%s: %w", name, err))
			g.mu.Unlock()
			g.cancel()
		}
	})
}

func (g *group) wait() error {
	g.wg.Wait()
	g.cancel()
	return errors.Join(g.errs...)
}
