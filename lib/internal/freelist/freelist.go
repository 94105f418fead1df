// Package freelist keeps released objects for reuse by the parallel
// kernels of lib/compute and lib/nn, so that their steady-state calls
// allocate nothing.
package freelist

import "sync"

// Max is the most objects a List holds; more are left to the garbage
// collector.
const Max = 16

// List is a free list of *T. Unlike a sync.Pool it is not emptied by the
// garbage collector (after which a sync.Pool also allocates its per-P
// cache again). The zero List is empty and ready; it is safe for
// concurrent use.
type List[T any] struct {
	mu    sync.Mutex
	items []*T
}

// Get returns a released object, or a new zero one when none is left.
// A released object keeps the fields it had: callers overwrite what they
// use.
func (f *List[T]) Get() *T {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.items); n > 0 {
		x := f.items[n-1]
		f.items = f.items[:n-1]
		return x
	}
	return new(T)
}

// Put releases x for a later Get, unless the list already holds Max.
func (f *List[T]) Put(x *T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.items) < Max {
		f.items = append(f.items, x)
	}
}
