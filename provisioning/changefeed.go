package provisioning

import (
	"context"
	"sync"
)

// ChangeFeed fans a "something changed" signal out to subscribers, the way
// a Cluster's Changes is expected to behave: each subscriber's channel
// holds at most one pending signal, so bursts coalesce and a slow reader
// never blocks the writer. The zero value is ready to use.
type ChangeFeed struct {
	mu   sync.Mutex // never held while calling out
	subs map[int]chan struct{}
	next int
}

// Notify signals every subscriber.
func (f *ChangeFeed) Notify() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Subscribe returns a channel that receives a signal after changes; it is
// closed when ctx is done.
func (f *ChangeFeed) Subscribe(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[int]chan struct{}{}
	}
	id := f.next
	f.next++
	f.subs[id] = ch
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		delete(f.subs, id)
		close(ch)
		f.mu.Unlock()
	}()
	return ch
}
