package cuda

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/detlab/detlab/lib/nn"
)

// Backend runs nn's heavy kernels on one GPU: convolutions as per-image
// im2col kernels plus cuBLAS GEMMs, BatchNorm statistics and affine, max
// pooling and GEMM. Create it with NewBackend, install it with
// nn.SetBackend (or a model's device setting) and Close it when done.
//
// It is safe for concurrent use; operations run one at a time. Operations
// are queued on the backend's stream and return before the device has run
// them (see Sync); on a device without concurrent managed access, or with
// DETLAB_CUDA_SYNC=1, each operation waits for the device instead.
type Backend struct {
	mu       sync.Mutex
	g        gpu
	ordinal  int
	name     string
	pageable bool
	mem      registry
	pool     devPool
	managed  int64 // bytes of live managed allocations
	peak     int64
	stats    Stats
	closed   bool
	err      error
	// prefetchOperands: prefetch large managed operands to the device
	// before each operation's kernels (SetPrefetchOperands).
	prefetchOperands bool
	// syncEach: every operation waits for the device (sync mode); why
	// says why, for Mode.
	syncEach bool
	why      string
	// pending: work was queued on the stream since the last synchronize.
	// Atomic so that Sync's common case (nothing pending) takes no lock.
	pending atomic.Bool
	// dropSync, when > 0, makes the dropSync-th next Sync return without
	// waiting (tests: the lazy fake device must then catch the missing
	// synchronization).
	dropSync int
}

// SyncEnv is the environment variable that, set to 1, makes every
// operation of a backend created afterwards wait for the device before it
// returns (like CUDA_LAUNCH_BLOCKING): for debugging, so that a device
// failure is reported by the operation that caused it.
const SyncEnv = "DETLAB_CUDA_SYNC"

var _ nn.Backend = (*Backend)(nil)

// Stats counts a backend's work since it was created.
type Stats struct {
	Launches    int64 // kernel launches
	GEMMs       int64 // cuBLAS GEMM calls
	StagedBytes int64 // bytes of Go memory copied to the device for kernels
	Syncs       int64 // stream synchronizations (waits for the device)
}

// NewBackend opens GPU ordinal (0 is the first): it loads the driver and
// cuBLAS, retains the device's primary context, JIT-compiles the embedded
// kernels and creates a stream and a cuBLAS handle with TF32 off (so
// float32 GEMMs match the CPU's up to summation order). The error names
// what is missing on a machine without a GPU.
func NewBackend(ordinal int) (*Backend, error) {
	if openHook != nil {
		return openHook(ordinal)
	}
	g, err := openGPU(ordinal)
	if err != nil {
		return nil, err
	}
	in := g.info
	driver := "?"
	var v int32
	if g.d.check("cuDriverGetVersion", g.d.cuDriverGetVersion(&v)) == nil {
		driver = versionString(int(v))
	}
	name := fmt.Sprintf("cuda:%d (%s, sm_%s, driver %s, cuBLAS %s)", ordinal, in.Name,
		strings.ReplaceAll(in.Capability, ".", ""), driver, g.c.version)
	return newBackend(g, ordinal, name, g.pageable), nil
}

// openHook, when set, is what NewBackend returns instead of opening a
// GPU: lib/cuda's own tests set it under DETLAB_CUDA_FAKE so that code
// which opens a device itself (lib/fasterrcnn's Config.Device) runs on
// the fake device. Nothing else sets it.
var openHook func(ordinal int) (*Backend, error)

func newBackend(g gpu, ordinal int, name string, pageable bool) *Backend {
	b := &Backend{g: g, ordinal: ordinal, name: name, pageable: pageable}
	switch {
	case os.Getenv(SyncEnv) == "1":
		b.syncEach, b.why = true, SyncEnv+"=1"
	case !g.concurrentManaged():
		b.syncEach, b.why = true, "the device has no concurrent managed access"
	}
	return b
}

// Mode says how operations complete: "async" (queued on the stream, host
// code synchronizes through Sync before touching their results) or
// "sync (REASON)" (each operation waits for the device: DETLAB_CUDA_SYNC=1,
// or a device without concurrent managed access, where host code touching
// managed memory while a kernel runs would fault).
func (b *Backend) Mode() string {
	if b.syncEach {
		return "sync (" + b.why + ")"
	}
	return "async"
}

// Name describes the backend: "cuda:0 (NVIDIA H200, sm_90, driver 13.0,
// cuBLAS 13.1.0)".
func (b *Backend) Name() string { return b.name }

// Ordinal returns the device number.
func (b *Backend) Ordinal() int { return b.ordinal }

// Err returns the first device failure of an operation (which panicked
// with an *OpError), or nil.
func (b *Backend) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Stats returns the work counters.
func (b *Backend) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// devAlloc allocates device-only memory and tracks the peak (b.mu held).
func (b *Backend) devAlloc(bytes int) (uint64, error) {
	p, err := b.g.alloc(bytes)
	if err != nil {
		return 0, err
	}
	b.notePeak(int64(bytes))
	return p, nil
}

// notePeak updates the peak for extra bytes about to be counted in use
// (b.mu held).
func (b *Backend) notePeak(extra int64) {
	if u := b.managed + int64(b.pool.held) + extra; u > b.peak {
		b.peak = u
	}
}

// TryAlloc returns n float32s of zeroed managed memory, addressable by
// host code and kernels alike, or the error (out of memory, closed). The
// memory is the caller's until Free or Close; Go's GC never frees it.
func (b *Backend) TryAlloc(n int) ([]float32, error) {
	if n < 0 {
		return nil, fmt.Errorf("cuda: Alloc of %d elements", n)
	}
	if n == 0 {
		return []float32{}, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if err := b.g.begin(); err != nil {
		return nil, err
	}
	p, err := b.g.allocManaged(4 * n)
	b.g.end()
	if err != nil {
		return nil, err
	}
	if err := b.mem.add(uintptr(p), 4*n); err != nil {
		return nil, err
	}
	b.notePeak(int64(4 * n))
	b.managed += int64(4 * n)
	return unsafe.Slice((*float32)(p), n), nil
}

// Alloc is TryAlloc for nn.NewArenaWith: when the device memory is
// exhausted (or the backend closed) it returns ordinary Go memory, which
// the kernels then stage, so a model still runs, more slowly.
func (b *Backend) Alloc(n int) []float32 {
	x, err := b.TryAlloc(n)
	if err != nil {
		return make([]float32, max(n, 0))
	}
	return x
}

// Free releases a slice obtained from Alloc (it must start where the
// allocation starts). Slices the backend did not allocate, and ones
// already freed, are ignored. Using x after Free is a use-after-free.
func (b *Backend) Free(x []float32) {
	if cap(x) == 0 {
		return
	}
	p := unsafe.Pointer(unsafe.SliceData(x))
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	n, ok := b.mem.remove(uintptr(p))
	if !ok {
		return
	}
	b.managed -= int64(n)
	if err := b.g.begin(); err != nil {
		b.noteErr(err)
		return
	}
	defer b.g.end()
	// Queued kernels may still use x.
	if b.pending.Load() {
		b.noteErr(b.syncLocked())
	}
	b.noteErr(b.g.free(uint64(uintptr(p))))
}

func (b *Backend) noteErr(err error) {
	if err != nil && b.err == nil {
		b.err = err
	}
}

// MemoryStats returns the device memory the backend holds (managed
// allocations plus its pooled device buffers), now and at its peak, in
// bytes.
func (b *Backend) MemoryStats() (inUse, peak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.managed + int64(b.pool.held), b.peak
}

// ResetPeak makes the peak the current use (to measure one phase).
func (b *Backend) ResetPeak() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.peak = b.managed + int64(b.pool.held)
}

// DeviceMemory returns the whole device's free and total bytes
// (cuMemGetInfo), which includes other processes' use.
func (b *Backend) DeviceMemory() (free, total int64, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, 0, ErrClosed
	}
	if err := b.g.begin(); err != nil {
		return 0, 0, err
	}
	defer b.g.end()
	return b.g.memInfo()
}

// Prefetch moves the pages of x, a slice from Alloc, to the device ahead
// of the kernels that will read it (cuMemPrefetchAsync), instead of
// letting the first kernel fault them over; for example parameters just
// copied in by host code. Slices of Go memory are left alone. It returns
// when the move is done.
func (b *Backend) Prefetch(x []float32) error {
	if len(x) == 0 {
		return nil
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(x)))
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	ours, err := b.mem.contains(p, 4*len(x))
	if err != nil || !ours {
		return err
	}
	if err := b.g.begin(); err != nil {
		return err
	}
	defer b.g.end()
	if err := b.g.prefetch(uint64(p), 4*len(x)); err != nil {
		return err
	}
	return b.syncLocked()
}

// SetPrefetchOperands turns on (or off, the default) prefetching every
// managed operand of at least 1 MiB to the GPU at the start of each
// operation (cuMemPrefetchAsync), instead of letting the kernels fault in
// pages that host code touched since. Whether it pays depends on how much
// host code runs between the kernels; BenchmarkGPUResNet18TrainStep
// measures both.
func (b *Backend) SetPrefetchOperands(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prefetchOperands = on
}

// Synchronize waits until the device has finished all submitted work,
// pending or not, and returns the first failure of that work.
func (b *Backend) Synchronize() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if err := b.g.begin(); err != nil {
		return err
	}
	defer b.g.end()
	return b.syncLocked()
}

// Sync implements nn.Syncer: it waits for the operations queued since the
// last synchronization, so that host code may then read and write their
// operands. With nothing pending (sync mode, or right after another Sync)
// it returns at once without taking the backend's lock. A device failure
// of queued work surfaces here, as an *OpError for the operation "Sync"
// (also reported by Err); a closed backend has nothing pending.
func (b *Backend) Sync() error {
	if !b.pending.Load() {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || !b.pending.Load() {
		return nil
	}
	if b.dropSync > 0 {
		if b.dropSync--; b.dropSync == 0 {
			return nil
		}
	}
	if err := b.g.begin(); err != nil {
		b.noteErr(err)
		return &OpError{Op: "Sync", Err: err}
	}
	defer b.g.end()
	if err := b.syncLocked(); err != nil {
		b.noteErr(err)
		return &OpError{Op: "Sync", Err: err}
	}
	return nil
}

// syncLocked waits for the stream and counts it (b.mu held, context
// current).
func (b *Backend) syncLocked() error {
	b.stats.Syncs++
	err := b.g.sync()
	b.pending.Store(false)
	return err
}

// Close frees every allocation of the backend (slices from Alloc become
// invalid), its device buffers, module, stream and cuBLAS handle, and
// releases the context. Closing twice is a no-op.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	var errs []error
	if err := b.g.begin(); err != nil {
		errs = append(errs, err)
	} else {
		if err := b.syncLocked(); err != nil {
			errs = append(errs, err)
		}
		for _, r := range b.mem.all() {
			b.mem.remove(r.base)
			errs = append(errs, b.g.free(uint64(r.base)))
			b.managed -= int64(r.bytes)
		}
		errs = append(errs, b.pool.drain(b.g.free))
		b.g.end()
	}
	errs = append(errs, b.g.close())
	return errors.Join(errs...)
}

// run executes one operation: body queues device work on a scope, which
// finish completes (without waiting for the device unless the operation or
// the mode needs it). A failure panics with an *OpError (nn.Backend has no
// error results) after recording it for Err; a failure of earlier queued
// work that this operation's synchronization reveals is reported the same
// way, under this operation's name.
func (b *Backend) run(op string, body func(s *scope)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		panic(&OpError{Op: op, Err: ErrClosed})
	}
	if err := b.g.begin(); err != nil {
		b.noteErr(err)
		panic(&OpError{Op: op, Err: err})
	}
	s := &scope{b: b}
	body(s)
	err := s.finish()
	b.g.end()
	if err != nil {
		b.noteErr(err)
		panic(&OpError{Op: op, Err: err})
	}
}

// need returns x[:n], or panics with an *OpError when x is shorter than
// the geometry requires (a caller's bug, caught before any device work).
func need(op, what string, x []float32, n int) []float32 {
	if len(x) < n {
		panic(&OpError{Op: op, Err: errShort(what, len(x), n)})
	}
	return x[:n]
}

func errShort(what string, have, want int) error {
	return fmt.Errorf("%s has %d elements, the geometry needs %d", what, have, want)
}
