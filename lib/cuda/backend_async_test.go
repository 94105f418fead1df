package cuda

import (
	"errors"
	"math"
	"strings"
	"testing"
	"unsafe"

	"github.com/detlab/detlab/lib/nn"
)

// TestAsyncOperations checks when operations wait for the device, on a
// lazy fake device (queued work runs only at a synchronization): managed
// operands stay queued, staged outputs, host reads of the backend's own
// (NMS, the scaler's flag, BatchNorm statistics) and Go memory a pageable
// device reads in place wait, as does every operation in sync mode.
func TestAsyncOperations(t *testing.T) {
	for _, c := range []struct {
		name     string
		syncEach bool
		pageable bool
		op       func(b *Backend, managed func(int) []float32, f *fakeGPU) (check func() bool)
		wait     bool // the operation waits before it returns
	}{
		{"managed ReLU", false, false, func(b *Backend, m func(int) []float32, f *fakeGPU) func() bool {
			x, y := m(8), m(8)
			x[3] = 2
			b.ReLU(x, y)
			return func() bool { return y[3] == 2 }
		}, false},
		{"managed ReLU, sync mode", true, false, func(b *Backend, m func(int) []float32, f *fakeGPU) func() bool {
			x, y := m(8), m(8)
			x[3] = 2
			b.ReLU(x, y)
			return func() bool { return y[3] == 2 }
		}, true},
		{"staged output", false, false, func(b *Backend, m func(int) []float32, f *fakeGPU) func() bool {
			x, y := m(8), make([]float32, 8)
			x[3] = 2
			b.ReLU(x, y)
			return func() bool { return y[3] == 2 }
		}, true},
		{"pageable Go memory read in place", false, true, func(b *Backend, m func(int) []float32, f *fakeGPU) func() bool {
			x, y := make([]float32, directMinBytes), m(directMinBytes)
			f.host(x)
			x[3] = 2
			b.ReLU(x, y)
			return func() bool { return y[3] == 2 }
		}, true},
		{"Zero", false, false, func(b *Backend, m func(int) []float32, f *fakeGPU) func() bool {
			x := m(8)
			x[3] = 2
			b.Zero(x)
			return func() bool { return x[3] == 0 }
		}, false},
		{"NonFinite", false, false, func(b *Backend, m func(int) []float32, f *fakeGPU) func() bool {
			x := m(8)
			x[3] = float32(math.Inf(1))
			r := b.NonFinite(x)
			return func() bool { return r }
		}, true},
		{"ChannelStats into managed float64s", false, false, func(b *Backend, m func(int) []float32, f *fakeGPU) func() bool {
			x := m(8)
			x[3] = 8
			st := m(4) // two float64s
			mean := unsafeF64(st[:2])
			vr := unsafeF64(st[2:])
			b.ChannelStats(x, 1, 1, 8, mean, vr)
			return func() bool { return mean[0] == 1 }
		}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeGPU()
			f.lazy = true
			b := newBackend(f, 0, "fake", c.pageable)
			b.syncEach = c.syncEach
			defer b.Close()
			managed := func(n int) []float32 {
				x, err := b.TryAlloc(n)
				if err != nil {
					t.Fatal(err)
				}
				return x
			}
			check := c.op(b, managed, f)
			if got := check(); got != c.wait {
				t.Errorf("result visible on return: %v, want %v", got, c.wait)
			}
			if pending := b.pending.Load(); pending == c.wait {
				t.Errorf("pending after the operation: %v", pending)
			}
			syncs := b.Stats().Syncs
			if err := b.Sync(); err != nil {
				t.Fatal(err)
			}
			if !check() {
				t.Error("result wrong after Sync")
			}
			want := syncs
			if !c.wait {
				want++
			}
			if got := b.Stats().Syncs; got != want {
				t.Errorf("Syncs %d after Sync, want %d (a Sync with nothing pending must not wait)", got, want)
			}
		})
	}
}

// TestSyncError: a failure of queued work surfaces at Sync as an *OpError
// for "Sync", and Err reports it.
func TestSyncError(t *testing.T) {
	f := newFakeGPU()
	f.lazy = true
	b := newBackend(f, 0, "fake", false)
	defer b.Close()
	x, _ := b.TryAlloc(8)
	f.fail["sync"] = errors.New("fake: CUDA_ERROR_ILLEGAL_ADDRESS")
	b.ReLU(x, x) // queued: no error yet
	err := b.Sync()
	var oe *OpError
	if !errors.As(err, &oe) || oe.Op != "Sync" || !strings.Contains(err.Error(), "ILLEGAL_ADDRESS") {
		t.Fatalf("Sync = %v, want an *OpError for Sync with the queued work's failure", err)
	}
	if b.Err() == nil {
		t.Error("Err() = nil after a failed Sync")
	}
}

// TestMode: DETLAB_CUDA_SYNC=1 and a device without concurrent managed
// access make every operation wait.
func TestMode(t *testing.T) {
	for _, c := range []struct {
		env          string
		noConcurrent bool
		want         string
	}{
		{"", false, "async"},
		{"0", false, "async"},
		{"1", false, "sync (DETLAB_CUDA_SYNC=1)"},
		{"", true, "sync (the device has no concurrent managed access)"},
	} {
		t.Setenv(SyncEnv, c.env)
		f := newFakeGPU()
		f.noConcurrent = c.noConcurrent
		if got := newBackend(f, 0, "fake", false).Mode(); got != c.want {
			t.Errorf("%s=%q, concurrent managed access %v: Mode() = %q, want %q", SyncEnv, c.env, !c.noConcurrent, got, c.want)
		}
	}
}

// TestFreeWaits: Free waits for queued work that may still use the
// buffer; DropSync removes exactly one synchronization.
func TestFreeWaitsAndDropSync(t *testing.T) {
	f := newFakeGPU()
	f.lazy = true
	b := newBackend(f, 0, "fake", false)
	defer b.Close()
	x, _ := b.TryAlloc(8)
	y, _ := b.TryAlloc(8)
	x[1] = 3
	b.ReLU(x, y)
	b.Free(x)
	if y[1] != 3 || len(f.queue) != 0 {
		t.Fatalf("Free did not run the queued ReLU first: y[1] = %v, %d queued", y[1], len(f.queue))
	}
	z, _ := b.TryAlloc(8)
	z[2] = 5
	b.ReLU(z, y)
	b.dropSync = 1
	if err := b.Sync(); err != nil || y[2] == 5 || !b.pending.Load() {
		t.Fatalf("dropped Sync: err %v, y[2] = %v, pending %v; want the work still queued", err, y[2], b.pending.Load())
	}
	if err := nn.Sync(b); err != nil || y[2] != 5 {
		t.Fatalf("next Sync: err %v, y[2] = %v", err, y[2])
	}
}

// unsafeF64 views x (an even number of float32s) as float64s.
func unsafeF64(x []float32) []float64 {
	return unsafe.Slice((*float64)(unsafe.Pointer(&x[0])), len(x)/2)
}
