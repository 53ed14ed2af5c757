package interruption

import "context"

// Sink receives parsed notices. A nil error means the notice was accepted and
// its message may be deleted; an error leaves it for redelivery.
type Sink func(ctx context.Context, m Message) error

// Source produces notices until ctx is done. The SQS queue and the instance
// metadata service are sources; a test or a simulator may call a Sink (such as
// Handler.Handle) directly instead.
type Source interface {
	// Run feeds sink until ctx is done, then returns nil, or returns an error
	// that stops the source for good.
	Run(ctx context.Context, sink Sink) error
}

// ChannelSource is a Source fed from a channel, for simulators and tests that
// push notices themselves. Run returns when the channel is closed or ctx is
// done. A notice the sink refuses is reported to OnError (if set) and dropped:
// the pusher decides whether to push it again.
type ChannelSource struct {
	C       <-chan Message
	OnError func(Message, error)
}

// Run implements Source.
func (s ChannelSource) Run(ctx context.Context, sink Sink) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-s.C:
			if !ok {
				return nil
			}
			if err := sink(ctx, m); err != nil && s.OnError != nil {
				s.OnError(m, err)
			}
		}
	}
}
