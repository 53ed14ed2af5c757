package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fleetpack/fleetpack/cloudprovider/aws"
	"github.com/fleetpack/fleetpack/interruption"
	"github.com/fleetpack/fleetpack/offerings"
)

// spotWarning is how long EC2 gives a Spot instance between the interruption
// notice and its termination.
const spotWarning = 2 * time.Minute

// replacer is the provisioner-backed interruption.ProvisionerReplacer,
// with a timeline line for each node it returns.
type replacer struct {
	inner interruption.ProvisionerReplacer
	sim   *sim
}

// Replace implements interruption.Replacer.
func (r replacer) Replace(ctx context.Context, pods []*corev1.Pod) ([]*corev1.Node, error) {
	nodes, err := r.inner.Replace(ctx, pods)
	for _, n := range nodes {
		r.sim.replacements.Store(n.Name)
		r.sim.logf("  replacement %s for %s of the leaving node", r.sim.describeNode(n), plural(len(pods), "pod"))
	}
	return nodes, err
}

// timelineLog is a slog.Handler that prints the interruption handler's Info
// and Warn records as timeline lines, so the replay shows what the handler
// itself says it did.
type timelineLog struct {
	sim   *sim
	attrs []slog.Attr
}

func (h timelineLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h timelineLog) Handle(_ context.Context, r slog.Record) error {
	var parts []string
	add := func(a slog.Attr) bool {
		switch a.Key {
		case "messageID", "instanceID", "kind", "node":
			return true // already in the notice line
		}
		parts = append(parts, fmt.Sprintf("%s=%v", a.Key, a.Value))
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	line := "  handler: " + r.Message
	if len(parts) > 0 {
		line += " (" + strings.Join(parts, ", ") + ")"
	}
	h.sim.logf("%s", line)
	return nil
}

func (h timelineLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return timelineLog{sim: h.sim, attrs: append(slices.Clone(h.attrs), attrs...)}
}

func (h timelineLog) WithGroup(string) slog.Handler { return h }

// startHandler builds the interruption handler. The simulation does not
// run it: it steps it after every clock step (settle), so the timeline is
// deterministic.
func (s *sim) startHandler() error {
	h, err := interruption.NewHandler(interruption.HandlerOptions{
		Cluster:       s.cluster,
		CloudProvider: s.provider,
		Replacer:      replacer{inner: interruption.ProvisionerReplacer{Provisioner: s.prov}, sim: s},
		Unavailable:   s.unavailable,
		Clock:         s.clk,
		Logger:        slog.New(timelineLog{sim: s}),
	})
	if err != nil {
		return err
	}
	s.handler = h
	return nil
}

// settle lets the handler catch up with the clock: it does the work due now
// and says when it next has work (zero: none left).
func (s *sim) settle() {
	if s.handler != nil {
		s.handlerNext = s.handler.Step(s.ctx)
	}
}

// notice delivers an interruption message for the node, as the SQS queue
// source would, and runs the world until the handler has finished with it.
func (s *sim) notice(kind interruption.Kind, node *corev1.Node, deadline time.Time) error {
	id, err := aws.ParseProviderID(node.Spec.ProviderID)
	if err != nil {
		return err
	}
	s.stats.notices++
	msg := interruption.Message{
		ID: fmt.Sprintf("msg-%d", s.stats.notices), Kind: kind, InstanceIDs: []string{id},
		Time: s.clk.Now(), Deadline: deadline, Region: "us-east-1",
	}
	when := ""
	if !deadline.IsZero() {
		when = fmt.Sprintf(", instance terminates at %s", stampOf(deadline))
	}
	s.logf("EventBridge -> SQS: %s for %s (node %s)%s", kind, id, node.Name, when)
	if err := s.handler.Handle(s.ctx, msg); err != nil {
		return err
	}
	// Handle has done the urgent part (cordon, pool marked) before the
	// handler steps through the rest.
	s.observe()
	s.settle()
	s.observe()
	limit := s.clk.Now().Add(10 * time.Minute)
	for !s.handlerNext.IsZero() {
		if !s.clk.Now().Before(limit) {
			return fmt.Errorf("the interruption handler did not finish with %s for %s within 10 minutes of virtual time", kind, node.Name)
		}
		if err := s.tick(); err != nil {
			return err
		}
	}
	s.observe()
	return nil
}

func stampOf(t time.Time) string {
	d := t.Sub(epoch)
	return fmt.Sprintf("%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

// nodeOf returns the node running the deployment's first pod.
func (s *sim) nodeOf(deployment string) (*corev1.Node, error) {
	pods := s.deploymentPods(s.deployments[deployment])
	if len(pods) == 0 || pods[0].Spec.NodeName == "" {
		return nil, fmt.Errorf("deployment %s has no running pod", deployment)
	}
	return s.cluster.GetNode(s.ctx, pods[0].Spec.NodeName)
}

// interruptions plays steps 3 and 4: a Spot interruption notice and a
// rebalance recommendation for the node running inflate-spot.
func (s *sim) interruptions() error {
	s.step("3. Spot interruption notice")
	node, err := s.nodeOf("inflate-spot")
	if err != nil {
		return err
	}
	it, zone := node.Labels[offerings.LabelInstanceType], node.Labels[offerings.LabelZone]
	deadline := s.clk.Now().Add(spotWarning)
	s.stats.sceneUnavailable = 0
	if err := s.notice(interruption.KindSpotInterruption, node, deadline); err != nil {
		return err
	}
	if s.unavailable.IsUnavailable(offerings.CapacityTypeSpot, it, zone) {
		s.logf("Spot pool %s/%s is skipped until its mark expires (3 minutes after the notice)", it, zone)
	}
	if gone, ok := s.deletedAt[node.Name]; ok {
		s.logf("interrupted node drained and deleted at %s, %s before EC2 reclaims it", stampOf(gone), deadline.Sub(gone).Round(time.Second))
	}
	if err := s.advanceUntil(3*time.Minute, "inflate-spot running again", s.running("inflate-spot", 2)); err != nil {
		return err
	}
	s.logf("longest unavailability after the Spot warning: %s (from a pod's eviction until its replacement runs)", s.stats.sceneUnavailable.Round(time.Second))
	s.kubectlGetNodes(appsSelector)

	s.step("4. Rebalance recommendation")
	if node, err = s.nodeOf("inflate-spot"); err != nil {
		return err
	}
	s.replacements.Store("")
	s.stats.sceneUnavailable = 0
	if err := s.notice(interruption.KindRebalanceRecommendation, node, time.Time{}); err != nil {
		return err
	}
	repl, _ := s.replacements.Load().(string)
	ready, wasReady := s.readyAt[repl]
	gone, wasDeleted := s.deletedAt[node.Name]
	switch {
	case repl == "" || !wasDeleted:
		s.logf("rebalance: no replacement was launched or the at-risk node was not removed")
	case wasReady && !gone.Before(ready):
		s.logf("rebalance: replacement %s Ready at %s; at-risk node drained and deleted at %s, after its replacement was Ready", repl, stampOf(ready), stampOf(gone))
	default:
		s.logf("rebalance: at-risk node deleted at %s BEFORE its replacement %s was Ready", stampOf(gone), repl)
	}
	if err := s.advanceUntil(3*time.Minute, "inflate-spot running again", s.running("inflate-spot", 2)); err != nil {
		return err
	}
	s.logf("longest unavailability after the rebalance recommendation: %s", s.stats.sceneUnavailable.Round(time.Second))
	s.kubectlGetNodes(appsSelector)
	return nil
}
