package cuda

import (
	"fmt"
	"slices"
	"unsafe"
)

// access says how a kernel uses a buffer.
type access int

const (
	read      access         = 1 << iota // the kernel reads it
	write                                // the kernel writes all of it
	readWrite = read | write             // the kernel reads and writes (accumulates into) it
)

// prefetchMinBytes is the smallest managed operand SetPrefetchOperands
// prefetches: below it the call costs more than the faults it saves.
const prefetchMinBytes = 1 << 20

// directMinBytes: on a device with pageable memory access, Go slices at
// least this large are passed to kernels as they are. Smaller ones may
// live on a goroutine stack, which can move, so they are always staged.
const directMinBytes = 64 << 10

// staged is a Go buffer copied into a device buffer for one operation.
type staged struct {
	host  unsafe.Pointer
	bytes int
	dev   uint64
	class int
	acc   access
}

// scope is one Backend operation: it turns slices into device addresses
// (staging Go memory), launches, and on finish copies staged outputs back
// and returns the device buffers to the pool. It waits for the device only
// when it must: staged outputs, Go memory the device reads in place, an
// operation whose results the backend reads on the host (hostRead), or
// sync mode. Otherwise the work stays queued on the stream: stream order
// runs it before any later operation's, so pooled buffers returned here
// may serve the next operation at once. The first error sticks; later
// calls do nothing.
type scope struct {
	b      *Backend
	staged []staged
	temps  []staged // device scratch (host nil)
	// fetched lists the managed ranges already prefetched in this scope.
	fetched []region
	// hostRead: the operation reads (or lets its caller read) results on
	// the host before returning, so finish waits for the device.
	hostRead bool
	// direct: a kernel addresses Go memory in place (pageable access); Go
	// code owns that memory again when the operation returns, so finish
	// waits for the device.
	direct bool
	err    error
}

func (s *scope) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

// ptr returns the device address for host range [p, p+bytes) used with
// access acc.
func (s *scope) ptr(p unsafe.Pointer, bytes int, acc access) uint64 {
	if s.err != nil || bytes == 0 {
		return 0
	}
	addr := uintptr(p)
	ours, err := s.b.mem.contains(addr, bytes)
	if err != nil {
		s.fail(err)
		return 0
	}
	if ours {
		if s.b.prefetchOperands && bytes >= prefetchMinBytes && !slices.Contains(s.fetched, region{addr, bytes}) {
			s.fetched = append(s.fetched, region{addr, bytes})
			s.b.pending.Store(true)
			if err := s.b.g.prefetch(uint64(addr), bytes); err != nil {
				s.fail(err)
				return 0
			}
		}
		return uint64(addr)
	}
	if s.b.pageable && bytes >= directMinBytes {
		s.direct = true
		return uint64(addr)
	}
	for i := range s.staged {
		if st := &s.staged[i]; st.host == p && st.bytes == bytes {
			if acc&read != 0 && st.acc&read == 0 {
				// Already staged as write-only: its device copy holds no
				// input yet.
				if err := s.b.g.htod(st.dev, p, bytes); err != nil {
					s.fail(err)
					return 0
				}
			}
			st.acc |= acc
			return st.dev
		}
	}
	dev, class, err := s.b.pool.get(bytes, s.b.devAlloc)
	if err != nil {
		s.fail(err)
		return 0
	}
	s.staged = append(s.staged, staged{host: p, bytes: bytes, dev: dev, class: class, acc: acc})
	s.b.pending.Store(true)
	if acc&read != 0 {
		if err := s.b.g.htod(dev, p, bytes); err != nil {
			s.fail(err)
			return 0
		}
	}
	s.b.stats.StagedBytes += int64(bytes)
	return dev
}

// f32 returns the device address of x (0 for an empty or nil slice).
func (s *scope) f32(x []float32, acc access) uint64 {
	if len(x) == 0 {
		return 0
	}
	return s.ptr(unsafe.Pointer(&x[0]), 4*len(x), acc)
}

// f64 returns the device address of x (0 for an empty or nil slice).
func (s *scope) f64(x []float64, acc access) uint64 {
	if len(x) == 0 {
		return 0
	}
	return s.ptr(unsafe.Pointer(&x[0]), 8*len(x), acc)
}

// i32 returns the device address of x (0 for an empty or nil slice).
func (s *scope) i32(x []int32, acc access) uint64 {
	if len(x) == 0 {
		return 0
	}
	return s.ptr(unsafe.Pointer(&x[0]), 4*len(x), acc)
}

// temp returns a device scratch buffer of at least bytes, for this
// operation only.
func (s *scope) temp(bytes int) uint64 {
	if s.err != nil {
		return 0
	}
	dev, class, err := s.b.pool.get(bytes, s.b.devAlloc)
	if err != nil {
		s.fail(err)
		return 0
	}
	s.temps = append(s.temps, staged{dev: dev, class: class, bytes: bytes})
	return dev
}

// launch checks args against the kernel's parameter kinds and launches it
// on grid blocks of blockThreads.
func (s *scope) launch(name string, grid int, args ...karg) {
	if s.err != nil || grid <= 0 {
		return
	}
	sig, ok := kernelParams[name]
	if !ok {
		s.fail(fmt.Errorf("cuda: no kernel %s in the PTX table", name))
		return
	}
	slots, err := packArgs(name, sig, args)
	if err != nil {
		s.fail(err)
		return
	}
	s.b.stats.Launches++
	s.b.pending.Store(true)
	if err := s.b.g.launch(name, grid, blockThreads, slots); err != nil {
		s.fail(err)
	}
}

// gemm is the row-major C = alpha*op(A)*op(B) + beta*C on device
// addresses, through column-major cuBLAS by the usual swap: row-major C
// is column-major C^T, and C^T = op(B)^T op(A)^T, so cuBLAS gets B first
// with the same transpose flags and m and n exchanged.
func (s *scope) gemm(transA, transB bool, m, n, k int, alpha float32, a uint64, lda int, b uint64, ldb int, beta float32, c uint64, ldc int) {
	if s.err != nil {
		return
	}
	s.b.stats.GEMMs++
	s.b.pending.Store(true)
	if err := s.b.g.sgemm(transB, transA, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc); err != nil {
		s.fail(err)
	}
}

// finish queues the copies of staged outputs back to Go memory, waits for
// the device when the operation must (see scope), returns every device
// buffer to the pool and reports the first error of the operation.
func (s *scope) finish() error {
	wait := s.b.syncEach || s.hostRead || s.direct
	for _, st := range s.staged {
		if s.err == nil && st.acc&write != 0 {
			wait = true
			if err := s.b.g.dtoh(st.host, st.dev, st.bytes); err != nil {
				s.fail(err)
			}
		}
	}
	if s.err == nil && wait && s.b.pending.Load() {
		if err := s.b.syncLocked(); err != nil {
			s.fail(err)
		}
	}
	for _, st := range s.staged {
		s.b.pool.put(st.dev, st.class)
	}
	for _, t := range s.temps {
		s.b.pool.put(t.dev, t.class)
	}
	s.staged, s.temps = nil, nil
	return s.err
}
