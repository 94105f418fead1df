// Package workpool runs the parts of the parallel kernels of lib/compute
// and lib/nn on one set of long-lived worker goroutines (GOMAXPROCS-1 of
// them: the calling goroutine runs a part itself).
//
// A worker that finishes a part spins for a short while (SpinWait,
// yielding the processor between polls) before it parks, and so does a
// caller waiting for the other parts: a forward pass hands work over many
// times per millisecond (every layer is several parallel phases), and a
// parked goroutine's thread takes tens of microseconds to wake and to be
// given the readied goroutine, which left one of two cores idle at every
// phase boundary. One pool for both packages, rather than one each,
// keeps a spinning worker of one from occupying the processor that the
// other's readied worker waits for.
package workpool

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/detlab/detlab/lib/internal/freelist"
)

// Task is the work of one parallel call, split into parts: Run(part) does
// one of them. Tasks are pooled structs rather than closures, so that a
// call allocates nothing.
type Task interface{ Run(part int) }

// SpinWait is the longest an idle worker, and a caller whose own parts
// are done, poll before parking. Waits of a few hundred microseconds are
// common in a forward pass (a serial stretch between two parallel
// phases, a part that runs longer than the caller's), and on this VM a
// park and wake-up pair costs more than spinning through them: ResNet18's
// batch-1 forward took 15.3 ms with a 100 us cap, 11.7 with 300 us and
// 10.9-13.4 with 1 ms (medians of six interleaved rounds each,
// scripts/bench-ab, 2 cores); a 3 ms cap gained nothing more.
const SpinWait = 1000 * time.Microsecond

// The current spin budgets, in nanoseconds, adapt between 0 and SpinWait:
// a wait that the spin ended (the work came, the parts finished) doubles
// its budget, one that ran out halves it. On an idle machine the budgets
// stay near SpinWait; where other processes hold the cores (a descheduled
// worker finishes late whatever the caller does) they shrink towards
// parking at once, instead of spinning on CPU time the workers need.
var workerBudget, callerBudget atomic.Int64

func init() {
	workerBudget.Store(int64(SpinWait))
	callerBudget.Store(int64(SpinWait))
}

// adapt doubles budget (plus a microsecond, so that 0 recovers) after a
// spin that succeeded, up to SpinWait, and halves it after one that ran
// out.
func adapt(budget *atomic.Int64, b int64, ok bool) {
	if ok {
		budget.Store(min(2*b+int64(time.Microsecond), int64(SpinWait)))
	} else {
		budget.Store(b / 2)
	}
}

// call is one Run in flight.
type call struct {
	t Task
	// state counts the parts handed to workers and not yet done, plus
	// parking once the caller has stopped spinning and is about to wait
	// on done. One word for both, so that the worker whose decrement
	// ends the call learns in the same atomic operation whether the
	// caller waits for a wake-up (then it sends on done) or not (then it
	// must not touch the call again: the caller may be reusing it).
	state atomic.Int64
	done  chan struct{} // capacity 1
}

// parking is the bit of call.state the caller sets before it parks.
const parking = 1 << 32

// item is one part of a call for a worker.
type item struct {
	c    *call
	part int
}

var (
	start sync.Once
	// items has room for every worker, and a part is only sent after
	// claiming an idle worker (idle), so a send never blocks and no part
	// waits for a worker that is busy with the part's own caller.
	items chan item
	idle  atomic.Int32
	calls freelist.List[call]
)

func startPool() {
	n := max(1, runtime.GOMAXPROCS(0)-1)
	items = make(chan item, n)
	for range n {
		go worker()
	}
}

func worker() {
	for {
		idle.Add(1)
		it, ok := poll()
		if !ok {
			it = <-items
		}
		c := it.c
		c.t.Run(it.part)
		if c.state.Add(-1) == parking {
			c.done <- struct{}{}
		}
	}
}

// poll waits for an item for up to the worker spin budget without
// parking, yielding the processor between polls.
func poll() (item, bool) {
	b := workerBudget.Load()
	var t0 time.Time
	for i := 0; ; i++ {
		select {
		case it := <-items:
			if i > 0 {
				adapt(&workerBudget, b, true)
			}
			return it, true
		default:
		}
		if i&7 == 0 {
			if i == 0 {
				t0 = time.Now()
			} else if time.Since(t0) > time.Duration(b) {
				adapt(&workerBudget, b, false)
				return item{}, false
			}
		}
		runtime.Gosched()
	}
}

// claim takes an idle worker, yielding once so that a worker just
// finishing the previous call's part can become idle, and reports false
// when none is.
func claim() bool {
	for try := 0; try < 2; try++ {
		for n := idle.Load(); n > 0; n = idle.Load() {
			if idle.CompareAndSwap(n, n-1) {
				return true
			}
		}
		runtime.Gosched()
	}
	return false
}

// Run runs t.Run(part) for every part in [0, parts): part 0 on the
// calling goroutine, the others on idle workers. Parts no worker is free
// to take (concurrent or nested calls) run on the caller after its own, so
// the process never runs more kernel goroutines than the pool plus its
// callers (the cores are not oversubscribed) and nesting cannot deadlock.
func Run(parts int, t Task) {
	if parts <= 1 {
		if parts == 1 {
			t.Run(0)
		}
		return
	}
	start.Do(startPool)
	c := calls.Get()
	if c.done == nil {
		c.done = make(chan struct{}, 1)
	}
	c.t = t
	inline := parts // parts from inline on run here
	for p := 1; p < parts; p++ {
		if !claim() {
			inline = p
			break
		}
		c.state.Add(1)
		items <- item{c: c, part: p}
	}
	t.Run(0)
	for p := inline; p < parts; p++ {
		t.Run(p)
	}
	if c.state.Load() > 0 {
		// Busy-wait without yielding: a yield would let this processor
		// run a worker that a send just readied here, and the caller
		// resume on the other one, so that the runtime's parking records
		// (acquired on one processor, freed on the other) pile up on one
		// side and get allocated anew on the other.
		b := callerBudget.Load()
		t0 := time.Now()
		ok := true
		for i := 1; c.state.Load() > 0; i++ {
			if i&255 == 0 && time.Since(t0) > time.Duration(b) {
				ok = false
				break
			}
		}
		adapt(&callerBudget, b, ok)
		// Park only if parts are still running; a worker that ends the
		// call after this sees the bit and wakes the caller. Parking
		// through a WaitGroup instead cost a futex wake-up whenever the
		// caller reached Wait a moment before the last worker's Done,
		// even after its spin had seen every part finish.
		if !ok && c.state.Add(parking) != parking {
			<-c.done
		}
		c.state.Store(0)
	}
	c.t = nil
	calls.Put(c)
}
