package interruption

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"k8s.io/utils/clock"
)

// SQSAPI is the part of the SQS client the queue source uses; *sqs.Client and
// the fake in interruption/fakesqs satisfy it.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, params *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, params *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

var _ SQSAPI = (*sqs.Client)(nil)

// SQS receive parameters. Long polling keeps an idle queue cheap; 10 is the
// most SQS returns per receive.
const (
	sqsWaitTimeSeconds    = 20
	sqsMaxMessages        = 10
	defaultSQSWorkers     = 10
	defaultReceiveBackoff = time.Second
	maxReceiveBackoff     = 30 * time.Second
	defaultVisibility     = 20 * time.Second
)

// SQSOptions configure an SQSSource.
type SQSOptions struct {
	// QueueURL is the queue EventBridge delivers to. Required.
	QueueURL string
	// Workers bounds how many messages are handled at once (default 10).
	// The source receives no more than it can handle, so unhandled messages
	// stay in the queue rather than time out in memory.
	Workers int
	// VisibilityTimeout is how long a received message stays hidden before
	// SQS redelivers it if it is not deleted (default 20 s).
	VisibilityTimeout time.Duration
	// Clock drives the backoff after receive errors (default: real clock).
	Clock clock.Clock
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Metrics, if set, counts dropped messages and delete failures.
	Metrics *Metrics
}

// SQSSource receives EventBridge events from an SQS queue. Each message is
// parsed and handed to the sink by a bounded pool of workers; messages the
// sink accepted and messages that cannot be parsed are deleted in batches,
// and messages the sink refused are left to reappear after their visibility
// timeout. Delivery is at least once, so the sink must be idempotent.
type SQSSource struct {
	api  SQSAPI
	opts SQSOptions
}

// NewSQSSource returns a source reading opts.QueueURL through api.
func NewSQSSource(api SQSAPI, opts SQSOptions) (*SQSSource, error) {
	if api == nil {
		return nil, errors.New("interruption: SQS source: nil SQS client")
	}
	if opts.QueueURL == "" {
		return nil, errors.New("interruption: SQS source: QueueURL is required")
	}
	if opts.Workers < 0 {
		return nil, fmt.Errorf("interruption: SQS source: Workers: %d is negative", opts.Workers)
	}
	if opts.VisibilityTimeout < 0 {
		return nil, fmt.Errorf("interruption: SQS source: VisibilityTimeout: %s is negative", opts.VisibilityTimeout)
	}
	if opts.Workers == 0 {
		opts.Workers = defaultSQSWorkers
	}
	if opts.VisibilityTimeout == 0 {
		opts.VisibilityTimeout = defaultVisibility
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &SQSSource{api: api, opts: opts}, nil
}

// Run implements Source. It returns nil once ctx is done and every received
// message has been handled and its delete attempted.
func (s *SQSSource) Run(ctx context.Context, sink Sink) error {
	jobs := make(chan sqstypes.Message)
	deletes := make(chan sqstypes.Message, s.opts.Workers)

	var workers sync.WaitGroup
	for range s.opts.Workers {
		workers.Go(func() {
			for m := range jobs {
				if s.handle(ctx, sink, m) {
					deletes <- m
				}
			}
		})
	}
	deleterDone := make(chan struct{})
	go func() {
		defer close(deleterDone)
		s.deleteLoop(deletes)
	}()

	s.receiveLoop(ctx, jobs)
	close(jobs)
	workers.Wait()
	close(deletes)
	<-deleterDone
	return nil
}

func (s *SQSSource) receiveLoop(ctx context.Context, jobs chan<- sqstypes.Message) {
	backoff := defaultReceiveBackoff
	for ctx.Err() == nil {
		out, err := s.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(s.opts.QueueURL),
			MaxNumberOfMessages:         sqsMaxMessages,
			WaitTimeSeconds:             sqsWaitTimeSeconds,
			VisibilityTimeout:           int32(s.opts.VisibilityTimeout / time.Second),
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameSentTimestamp},
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.opts.Logger.Error("receiving interruption messages", "queue", s.opts.QueueURL, "error", err, "retryIn", backoff)
			select {
			case <-ctx.Done():
				return
			case <-s.opts.Clock.After(backoff):
			}
			backoff = min(2*backoff, maxReceiveBackoff)
			continue
		}
		backoff = defaultReceiveBackoff
		for _, m := range out.Messages {
			// Once received, a message is handed over even if ctx ends:
			// the workers see the cancelled context and refuse it, and it
			// comes back after its visibility timeout.
			jobs <- m
		}
	}
}

// handle parses and sinks one message and reports whether to delete it.
func (s *SQSSource) handle(ctx context.Context, sink Sink, m sqstypes.Message) bool {
	log := s.opts.Logger.With("sqsMessageID", aws.ToString(m.MessageId))
	msg, err := Parse([]byte(aws.ToString(m.Body)))
	if err != nil {
		// Retrying cannot fix a body, so it is dropped, loudly.
		log.Warn("deleting unparseable interruption message", "error", err)
		s.opts.Metrics.dropped(err)
		return true
	}
	if sent, ok := m.Attributes[string(sqstypes.MessageSystemAttributeNameSentTimestamp)]; ok {
		if ms, err := strconv.ParseInt(sent, 10, 64); err == nil {
			log = log.With("queueLatency", s.opts.Clock.Since(time.UnixMilli(ms)))
		}
	}
	if err := sink(ctx, msg); err != nil {
		log.Error("handling interruption message; leaving it for redelivery", "id", msg.ID, "kind", msg.Kind, "error", err)
		return false
	}
	return true
}

// deleteLoop deletes handled messages in batches of up to 10: it blocks for
// the first, takes whatever else is ready, and deletes them together, so
// batches grow under load without any timer.
func (s *SQSSource) deleteLoop(deletes <-chan sqstypes.Message) {
	// Deletes outlive the run's context so a shutdown does not turn handled
	// messages into redeliveries.
	ctx := context.Background()
	for first := range deletes {
		batch := []sqstypes.Message{first}
	fill:
		for len(batch) < sqsMaxMessages {
			select {
			case m, ok := <-deletes:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			default:
				break fill
			}
		}
		s.deleteBatch(ctx, batch)
	}
}

func (s *SQSSource) deleteBatch(ctx context.Context, batch []sqstypes.Message) {
	entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(batch))
	for i, m := range batch {
		entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
	}
	out, err := s.api.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(s.opts.QueueURL), Entries: entries})
	if err != nil {
		s.opts.Logger.Error("deleting interruption messages; they will be redelivered and deduplicated", "queue", s.opts.QueueURL, "count", len(batch), "error", err)
		if s.opts.Metrics != nil {
			s.opts.Metrics.DeleteFailures.Add(float64(len(batch)))
		}
		return
	}
	for _, f := range out.Failed {
		i, _ := strconv.Atoi(aws.ToString(f.Id))
		id := ""
		if i >= 0 && i < len(batch) {
			id = aws.ToString(batch[i].MessageId)
		}
		s.opts.Logger.Error("deleting interruption message failed; it will be redelivered and deduplicated", "sqsMessageID", id, "code", aws.ToString(f.Code), "message", aws.ToString(f.Message))
		if s.opts.Metrics != nil {
			s.opts.Metrics.DeleteFailures.Inc()
		}
	}
}
