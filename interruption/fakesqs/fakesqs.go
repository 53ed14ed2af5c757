// Package fakesqs is an in-memory SQS standard queue that implements the
// ReceiveMessage and DeleteMessageBatch calls of aws-sdk-go-v2's *sqs.Client
// (interruption.SQSAPI), with SQS's semantics: long polling, visibility
// timeouts on an injected clock, a fresh receipt handle per receive, batch
// delete with per-entry failures and the batch-level validation errors, and
// in-flight counts. Tests use it to exercise the interruption queue source.
package fakesqs

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"k8s.io/utils/clock"
)

// DefaultVisibilityTimeout is SQS's default for a queue.
const DefaultVisibilityTimeout = 30 * time.Second

// message is one queued message and its delivery state.
type message struct {
	id        string
	body      string
	sent      time.Time
	visibleAt time.Time
	// handle is the receipt handle of the latest receive; "" if never
	// received.
	handle   string
	receives int
}

// Queue is one fake SQS queue. The zero value is not usable; call New.
type Queue struct {
	url   string
	clock clock.Clock

	mu       sync.Mutex
	msgs     []*message
	byHandle map[string]*message // every handle ever issued
	deleted  map[string]bool     // message ids deleted
	all      map[string]*message // every message ever sent, by id
	nextID   int
	// wake is closed (and replaced) whenever a message is sent, so long
	// polls return at once.
	wake chan struct{}

	receiveErrs []error
	deleteFault map[string]string // message id -> error code for its next delete

	// Stats, read through Stats().
	stats Stats
}

// Stats counts calls and outcomes.
type Stats struct {
	ReceiveCalls     int
	DeleteBatchCalls int
	// Received counts messages returned, redeliveries included.
	Received int
	// Deleted counts messages actually removed.
	Deleted int
	// DeleteFailures counts per-entry failures returned.
	DeleteFailures int
	// MaxDeleteBatch is the largest batch a DeleteMessageBatch carried.
	MaxDeleteBatch int
}

// New returns an empty queue at url whose time is clk.
func New(url string, clk clock.Clock) *Queue {
	return &Queue{url: url, clock: clk, byHandle: map[string]*message{}, all: map[string]*message{}, deleted: map[string]bool{}, wake: make(chan struct{}), deleteFault: map[string]string{}}
}

// URL is the queue's URL.
func (q *Queue) URL() string { return q.url }

// Send enqueues body, visible at once, and returns its message id.
func (q *Queue) Send(body string) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.nextID++
	now := q.clock.Now()
	m := &message{id: fmt.Sprintf("msg-%06d", q.nextID), body: body, sent: now, visibleAt: now}
	q.msgs = append(q.msgs, m)
	q.all[m.id] = m
	close(q.wake)
	q.wake = make(chan struct{})
	return m.id
}

// FailNextReceive makes the next ReceiveMessage call return err.
func (q *Queue) FailNextReceive(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.receiveErrs = append(q.receiveErrs, err)
}

// FailNextDelete makes the next delete of message id fail with code (for
// example "InternalError"), as a per-entry failure of DeleteMessageBatch.
func (q *Queue) FailNextDelete(id, code string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deleteFault[id] = code
}

// Len is the number of messages not yet deleted, in flight or not.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

// InFlight is the number of messages received and still invisible.
func (q *Queue) InFlight() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	n := 0
	for _, m := range q.msgs {
		if m.visibleAt.After(now) {
			n++
		}
	}
	return n
}

// Receives returns how many times message id has been received, deleted or
// not.
func (q *Queue) Receives(id string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if m, ok := q.all[id]; ok {
		return m.receives
	}
	return 0
}

// IsDeleted reports whether message id was deleted.
func (q *Queue) IsDeleted(id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.deleted[id]
}

// Stats returns the call counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stats
}

func (q *Queue) checkURL(url *string) error {
	if aws.ToString(url) != q.url {
		return &types.QueueDoesNotExist{Message: aws.String(fmt.Sprintf("queue %q does not exist", aws.ToString(url)))}
	}
	return nil
}

// ReceiveMessage returns up to MaxNumberOfMessages visible messages and hides
// them for the visibility timeout. With WaitTimeSeconds > 0 and nothing
// visible it long-polls: it returns when a message is sent or becomes
// visible, when the wait elapses on the queue's clock, or when ctx is done.
func (q *Queue) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if err := q.checkURL(in.QueueUrl); err != nil {
		return nil, err
	}
	maxN := in.MaxNumberOfMessages
	if maxN == 0 {
		maxN = 1
	}
	if maxN < 1 || maxN > 10 {
		return nil, invalidParameter("MaxNumberOfMessages", strconv.Itoa(int(in.MaxNumberOfMessages)), "must be between 1 and 10")
	}
	if in.WaitTimeSeconds < 0 || in.WaitTimeSeconds > 20 {
		return nil, invalidParameter("WaitTimeSeconds", strconv.Itoa(int(in.WaitTimeSeconds)), "must be between 0 and 20")
	}
	if in.VisibilityTimeout < 0 || in.VisibilityTimeout > 43200 {
		return nil, invalidParameter("VisibilityTimeout", strconv.Itoa(int(in.VisibilityTimeout)), "must be between 0 and 43200")
	}
	visibility := DefaultVisibilityTimeout
	if in.VisibilityTimeout > 0 {
		visibility = time.Duration(in.VisibilityTimeout) * time.Second
	}
	wantSent := false
	for _, a := range in.MessageSystemAttributeNames {
		if a == types.MessageSystemAttributeNameSentTimestamp || a == types.MessageSystemAttributeNameAll {
			wantSent = true
		}
	}

	q.mu.Lock()
	q.stats.ReceiveCalls++
	if len(q.receiveErrs) > 0 {
		err := q.receiveErrs[0]
		q.receiveErrs = q.receiveErrs[1:]
		q.mu.Unlock()
		return nil, err
	}
	q.mu.Unlock()

	waitUntil := q.clock.Now().Add(time.Duration(in.WaitTimeSeconds) * time.Second)
	for {
		q.mu.Lock()
		now := q.clock.Now()
		var out []types.Message
		nextVisible := time.Time{}
		for _, m := range q.msgs {
			if m.visibleAt.After(now) {
				if nextVisible.IsZero() || m.visibleAt.Before(nextVisible) {
					nextVisible = m.visibleAt
				}
				continue
			}
			if int32(len(out)) == maxN {
				break
			}
			m.receives++
			m.visibleAt = now.Add(visibility)
			m.handle = fmt.Sprintf("rh-%s-%d", m.id, m.receives)
			q.byHandle[m.handle] = m
			tm := types.Message{MessageId: aws.String(m.id), ReceiptHandle: aws.String(m.handle), Body: aws.String(m.body), Attributes: map[string]string{}}
			if wantSent {
				tm.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)] = strconv.FormatInt(m.sent.UnixMilli(), 10)
			}
			out = append(out, tm)
		}
		q.stats.Received += len(out)
		wake := q.wake
		q.mu.Unlock()

		if len(out) > 0 || !now.Before(waitUntil) {
			return &sqs.ReceiveMessageOutput{Messages: out}, nil
		}
		wait := waitUntil.Sub(now)
		if !nextVisible.IsZero() && nextVisible.Sub(now) < wait {
			wait = nextVisible.Sub(now)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		case <-q.clock.After(wait):
		}
	}
}

var batchIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// DeleteMessageBatch deletes up to 10 messages by receipt handle. Batch
// errors are returned as SQS does (EmptyBatchRequest,
// TooManyEntriesInBatchRequest, BatchEntryIdsNotDistinct,
// InvalidBatchEntryId); per-entry problems come back in Failed beside the
// Successful entries. As in SQS, a handle from an earlier receive of a
// message received again since succeeds without deleting it, and a handle
// never issued fails with ReceiptHandleIsInvalid.
func (q *Queue) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	if err := q.checkURL(in.QueueUrl); err != nil {
		return nil, err
	}
	if len(in.Entries) == 0 {
		return nil, &types.EmptyBatchRequest{Message: aws.String("the batch request doesn't contain any entries")}
	}
	if len(in.Entries) > 10 {
		return nil, &types.TooManyEntriesInBatchRequest{Message: aws.String(fmt.Sprintf("%d entries; the maximum is 10", len(in.Entries)))}
	}
	seen := map[string]bool{}
	for _, e := range in.Entries {
		id := aws.ToString(e.Id)
		if !batchIDPattern.MatchString(id) {
			return nil, &types.InvalidBatchEntryId{Message: aws.String(fmt.Sprintf("batch entry id %q is invalid", id))}
		}
		if seen[id] {
			return nil, &types.BatchEntryIdsNotDistinct{Message: aws.String(fmt.Sprintf("batch entry id %q is repeated", id))}
		}
		seen[id] = true
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	q.stats.DeleteBatchCalls++
	q.stats.MaxDeleteBatch = max(q.stats.MaxDeleteBatch, len(in.Entries))
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		handle := aws.ToString(e.ReceiptHandle)
		m, ok := q.byHandle[handle]
		if !ok {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid"), SenderFault: true, Message: aws.String(fmt.Sprintf("receipt handle %q is invalid", handle))})
			q.stats.DeleteFailures++
			continue
		}
		if code, ok := q.deleteFault[m.id]; ok {
			delete(q.deleteFault, m.id)
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String(code), Message: aws.String("injected fault")})
			q.stats.DeleteFailures++
			continue
		}
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
		if q.deleted[m.id] || m.handle != handle {
			// Already deleted, or received again since: success, no-op.
			continue
		}
		q.deleted[m.id] = true
		q.stats.Deleted++
		for i, x := range q.msgs {
			if x == m {
				q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
				break
			}
		}
	}
	return out, nil
}

// invalidParameter is the error SQS returns for an out-of-range parameter.
type invalidParameterError struct{ field, value, reason string }

func (e *invalidParameterError) Error() string {
	return fmt.Sprintf("InvalidParameterValue: Value %s for parameter %s is invalid. Reason: %s", e.value, e.field, e.reason)
}

// ErrorCode returns SQS's error code, like smithy API errors do.
func (e *invalidParameterError) ErrorCode() string { return "InvalidParameterValue" }

func invalidParameter(field, value, reason string) error {
	return &invalidParameterError{field: field, value: value, reason: reason}
}
