package fakesqs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	testingclock "k8s.io/utils/clock/testing"
)

const url = "https://sqs.us-east-1.amazonaws.com/123456789012/interruptions"

var t0 = time.Date(2026, 8, 21, 10, 0, 0, 0, time.UTC)

func receive(t *testing.T, q *Queue, n int32, visibility int32) []types.Message {
	t.Helper()
	out, err := q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: n, VisibilityTimeout: visibility,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameSentTimestamp}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Messages
}

func deleteBatch(t *testing.T, q *Queue, handles ...string) *sqs.DeleteMessageBatchOutput {
	t.Helper()
	in := &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url)}
	for i, h := range handles {
		in.Entries = append(in.Entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(string(rune('a' + i))), ReceiptHandle: aws.String(h)})
	}
	out, err := q.DeleteMessageBatch(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVisibilityTimeoutAndRedelivery(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	q := New(url, clk)
	id := q.Send("hello")
	first := receive(t, q, 10, 20)
	if len(first) != 1 || aws.ToString(first[0].MessageId) != id || aws.ToString(first[0].Body) != "hello" {
		t.Fatalf("first receive = %+v", first)
	}
	if got := first[0].Attributes["SentTimestamp"]; got != "1787306400000" {
		t.Errorf("SentTimestamp = %q", got)
	}
	if q.InFlight() != 1 {
		t.Errorf("InFlight = %d, want 1", q.InFlight())
	}
	if got := receive(t, q, 10, 20); len(got) != 0 {
		t.Fatalf("in-flight message received again: %+v", got)
	}
	clk.Step(19 * time.Second)
	if got := receive(t, q, 10, 20); len(got) != 0 {
		t.Fatalf("message visible before its timeout: %+v", got)
	}
	clk.Step(time.Second)
	second := receive(t, q, 10, 20)
	if len(second) != 1 || aws.ToString(second[0].ReceiptHandle) == aws.ToString(first[0].ReceiptHandle) {
		t.Fatalf("redelivery = %+v, want the message with a new receipt handle", second)
	}
	if q.Receives(id) != 2 {
		t.Errorf("Receives = %d, want 2", q.Receives(id))
	}

	// The stale handle succeeds without deleting, as SQS documents.
	out := deleteBatch(t, q, aws.ToString(first[0].ReceiptHandle))
	if len(out.Successful) != 1 || len(out.Failed) != 0 || q.IsDeleted(id) || q.Len() != 1 {
		t.Fatalf("stale handle: out=%+v deleted=%v len=%d", out, q.IsDeleted(id), q.Len())
	}
	out = deleteBatch(t, q, aws.ToString(second[0].ReceiptHandle))
	if len(out.Successful) != 1 || !q.IsDeleted(id) || q.Len() != 0 || q.InFlight() != 0 {
		t.Fatalf("current handle: out=%+v deleted=%v len=%d", out, q.IsDeleted(id), q.Len())
	}
	clk.Step(time.Hour)
	if got := receive(t, q, 10, 20); len(got) != 0 {
		t.Fatalf("deleted message came back: %+v", got)
	}
}

func TestReceiveLimits(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	q := New(url, clk)
	for range 15 {
		q.Send("m")
	}
	if got := receive(t, q, 10, 0); len(got) != 10 {
		t.Fatalf("received %d, want 10", len(got))
	}
	if got := receive(t, q, 10, 0); len(got) != 5 {
		t.Fatalf("received %d, want the other 5", len(got))
	}
	// Default visibility is 30 s.
	clk.Step(29 * time.Second)
	if got := receive(t, q, 10, 0); len(got) != 0 {
		t.Fatalf("received %d before the default visibility timeout", len(got))
	}
	clk.Step(time.Second)
	if got := receive(t, q, 0, 0); len(got) != 1 {
		t.Fatalf("MaxNumberOfMessages 0 returned %d, want 1 (SQS's default)", len(got))
	}
	for _, in := range []*sqs.ReceiveMessageInput{
		{QueueUrl: aws.String(url), MaxNumberOfMessages: 11},
		{QueueUrl: aws.String(url), WaitTimeSeconds: 21},
		{QueueUrl: aws.String(url), VisibilityTimeout: -1},
	} {
		if _, err := q.ReceiveMessage(context.Background(), in); err == nil {
			t.Errorf("ReceiveMessage(%+v) accepted an invalid parameter", in)
		}
	}
	var qdne *types.QueueDoesNotExist
	if _, err := q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String("other")}); !errors.As(err, &qdne) {
		t.Errorf("wrong queue: err = %v, want QueueDoesNotExist", err)
	}
}

func TestLongPoll(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	q := New(url, clk)
	type result struct {
		n   int
		err error
	}
	poll := func() chan result {
		ch := make(chan result, 1)
		go func() {
			out, err := q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 20})
			if err != nil {
				ch <- result{err: err}
				return
			}
			ch <- result{n: len(out.Messages)}
		}()
		return ch
	}

	// A send wakes the poll.
	ch := poll()
	for !clk.HasWaiters() {
		select {
		case r := <-ch:
			t.Fatalf("long poll returned before any message: %+v", r)
		default:
		}
	}
	q.Send("wake")
	if r := <-ch; r.err != nil || r.n != 1 {
		t.Fatalf("woken poll = %+v, want 1 message", r)
	}

	// With nothing sent, the poll ends empty after 20 s of queue time.
	clk.Step(time.Hour) // let the in-flight message's visibility pass... then delete it
	drain := receive(t, q, 10, 0)
	deleteBatch(t, q, aws.ToString(drain[0].ReceiptHandle))
	ch = poll()
	for !clk.HasWaiters() {
	}
	clk.Step(20 * time.Second)
	if r := <-ch; r.err != nil || r.n != 0 {
		t.Fatalf("timed-out poll = %+v, want 0 messages", r)
	}

	// Cancelling the context ends the poll.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 20})
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled poll err = %v", err)
	}
}

func TestDeleteMessageBatch(t *testing.T) {
	clk := testingclock.NewFakeClock(t0)
	q := New(url, clk)
	ids := []string{q.Send("a"), q.Send("b"), q.Send("c")}
	msgs := receive(t, q, 10, 30)
	q.FailNextDelete(ids[1], "InternalError")
	out := deleteBatch(t, q, aws.ToString(msgs[0].ReceiptHandle), aws.ToString(msgs[1].ReceiptHandle), "never-issued", aws.ToString(msgs[2].ReceiptHandle))
	if len(out.Successful) != 2 || len(out.Failed) != 2 {
		t.Fatalf("out = %+v, want 2 successful and 2 failed", out)
	}
	codes := map[string]string{}
	for _, f := range out.Failed {
		codes[aws.ToString(f.Id)] = aws.ToString(f.Code)
	}
	if codes["b"] != "InternalError" || codes["c"] != "ReceiptHandleIsInvalid" {
		t.Errorf("failed codes = %v", codes)
	}
	if !q.IsDeleted(ids[0]) || q.IsDeleted(ids[1]) || !q.IsDeleted(ids[2]) || q.Len() != 1 {
		t.Errorf("deleted = %v %v %v, len %d", q.IsDeleted(ids[0]), q.IsDeleted(ids[1]), q.IsDeleted(ids[2]), q.Len())
	}
	// The fault was one-shot: retrying succeeds.
	if out := deleteBatch(t, q, aws.ToString(msgs[1].ReceiptHandle)); len(out.Successful) != 1 || !q.IsDeleted(ids[1]) {
		t.Errorf("retry: %+v", out)
	}
	if s := q.Stats(); s.Deleted != 3 || s.DeleteFailures != 2 || s.MaxDeleteBatch != 4 || s.DeleteBatchCalls != 2 {
		t.Errorf("stats = %+v", s)
	}

	tooMany := &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url)}
	for i := range 11 {
		tooMany.Entries = append(tooMany.Entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(string(rune('a' + i))), ReceiptHandle: aws.String("x")})
	}
	dup := &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: []types.DeleteMessageBatchRequestEntry{{Id: aws.String("1"), ReceiptHandle: aws.String("x")}, {Id: aws.String("1"), ReceiptHandle: aws.String("y")}}}
	badID := &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: []types.DeleteMessageBatchRequestEntry{{Id: aws.String("a b"), ReceiptHandle: aws.String("x")}}}
	var empty *types.EmptyBatchRequest
	var many *types.TooManyEntriesInBatchRequest
	var notDistinct *types.BatchEntryIdsNotDistinct
	var invalid *types.InvalidBatchEntryId
	for _, tc := range []struct {
		in     *sqs.DeleteMessageBatchInput
		target any
	}{
		{&sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url)}, &empty},
		{tooMany, &many},
		{dup, &notDistinct},
		{badID, &invalid},
	} {
		_, err := q.DeleteMessageBatch(context.Background(), tc.in)
		if err == nil || !errors.As(err, tc.target) {
			t.Errorf("DeleteMessageBatch(%d entries) err = %v, want %T", len(tc.in.Entries), err, tc.target)
		}
	}
}

func TestFailNextReceive(t *testing.T) {
	q := New(url, testingclock.NewFakeClock(t0))
	q.Send("x")
	boom := errors.New("throttled")
	q.FailNextReceive(boom)
	if _, err := q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)}); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the injected error", err)
	}
	if got := receive(t, q, 10, 0); len(got) != 1 {
		t.Fatalf("after the fault, received %d, want 1", len(got))
	}
}
