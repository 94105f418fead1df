package cuda

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/detlab/detlab/lib/nn"
)

// fakeGPU implements gpu in Go memory and runs the contract's kernels as
// plain Go loops (written from kernels.h, independently of lib/nn's CPU
// code), so Backend's orchestration, staging and argument packing are
// tested without a GPU. A kernel or GEMM touching an address the fake did
// not hand out (an unstaged Go slice on a device without pageable access)
// fails, as it would fault on a GPU.
type fakeGPU struct {
	bufs       map[uintptr][]uint64 // allocations by base, kept alive here
	sizes      map[uintptr]int
	hosts      map[uintptr][]float32 // Go memory a pageable device may read
	depth      int                   // begin/end nesting
	maxDepth   int
	launches   []fakeLaunch
	gemms      int
	fail       map[string]error // "alloc", "allocManaged", "launch:<name>", "sgemm", "sync", "htod", "dtoh"
	freed      int
	closed     bool
	prefetched int          // bytes
	memsets    []fakeMemset // memsetD32 calls (fake_epilogue_test.go)
	// fast: GEMMs through nn.CPU (row-major, by the transpose swap) instead
	// of the naive column-major loop, for whole-network runs.
	fast bool
	// lazy: launches, GEMMs, memsets and copies are queued and run only
	// at sync, in order, as a stream that has not started yet would: a
	// host read before the sync sees stale data and a host write before
	// it is seen by the queued work, so a missing synchronization shows.
	lazy bool
	// queue is the lazy device's stream; draining is set while sync runs
	// it (work issued then, such as gemmEx's inner GEMMs, runs at once).
	queue    []func() error
	draining bool
	syncs    int
	// noConcurrent: the device reports no concurrent managed access.
	noConcurrent bool
}

// exec runs fn now, or queues it on a lazy device.
func (f *fakeGPU) exec(fn func() error) error {
	if f.lazy && !f.draining {
		f.queue = append(f.queue, fn)
		return nil
	}
	return fn()
}

// drain runs the queued work in order; the first failure is returned and
// the rest still runs (a stream stops at a fault, but the fake's failures
// are the backend's test cases, not faults).
func (f *fakeGPU) drain() error {
	f.draining = true
	defer func() { f.draining = false }()
	var first error
	for len(f.queue) > 0 {
		fn := f.queue[0]
		f.queue = f.queue[1:]
		if err := fn(); err != nil && first == nil {
			first = err
		}
	}
	f.queue = nil
	return first
}

func (f *fakeGPU) concurrentManaged() bool { return !f.noConcurrent }

// fakeKernel emulates one kernel on the fake device, given the launch's
// argument slots (see packArgs).
type fakeKernel func(f *fakeGPU, slots []uint64) error

// fakeKernels holds emulations registered by other test files (each
// feature's kernels in its own fake_<feature>_test.go, registered in an
// init function); launch consults it before its own switch.
var fakeKernels = map[string]fakeKernel{}

type fakeLaunch struct {
	name        string
	grid, block int
	slots       []uint64
}

func newFakeGPU() *fakeGPU {
	return &fakeGPU{bufs: map[uintptr][]uint64{}, sizes: map[uintptr]int{}, hosts: map[uintptr][]float32{}, fail: map[string]error{}}
}

func (f *fakeGPU) begin() error {
	if err := f.fail["begin"]; err != nil {
		return err
	}
	f.depth++
	f.maxDepth = max(f.maxDepth, f.depth)
	return nil
}

func (f *fakeGPU) end() { f.depth-- }

func (f *fakeGPU) newBuf(bytes int) uintptr {
	// 256 bytes of slack: tests build slices overrunning an allocation
	// without leaving the Go object (checkptr).
	b := make([]uint64, (bytes+7)/8+32)
	p := uintptr(unsafe.Pointer(&b[0]))
	f.bufs[p], f.sizes[p] = b, bytes
	return p
}

// fakeLimit is the fake device's memory: larger requests fail as the
// driver's would.
const fakeLimit = 8 << 30

var errFakeOOM = &Error{Op: "cuMemAlloc", Code: 2, Name: "CUDA_ERROR_OUT_OF_MEMORY", Desc: "out of memory"}

func (f *fakeGPU) allocManaged(bytes int) (unsafe.Pointer, error) {
	if err := f.fail["allocManaged"]; err != nil {
		return nil, err
	}
	if bytes > fakeLimit {
		return nil, errFakeOOM
	}
	p := f.newBuf(bytes)
	return unsafe.Pointer(&f.bufs[p][0]), nil
}

func (f *fakeGPU) alloc(bytes int) (uint64, error) {
	if err := f.fail["alloc"]; err != nil {
		return 0, err
	}
	if bytes > fakeLimit {
		return 0, errFakeOOM
	}
	return uint64(f.newBuf(bytes)), nil
}

func (f *fakeGPU) free(p uint64) error {
	if _, ok := f.bufs[uintptr(p)]; !ok {
		return fmt.Errorf("fake: free of unknown %#x", p)
	}
	delete(f.bufs, uintptr(p))
	delete(f.sizes, uintptr(p))
	f.freed++
	return nil
}

// live returns the number of allocations not freed.
func (f *fakeGPU) live() int { return len(f.bufs) }

// host lets kernels read a Go slice directly (pageable access).
func (f *fakeGPU) host(x []float32) { f.hosts[uintptr(unsafe.Pointer(&x[0]))] = x }

// bytesAt returns the memory [p, p+n) as bytes, or an error if no
// allocation (or registered host slice) holds it.
func (f *fakeGPU) bytesAt(p uint64, n int) ([]byte, error) {
	for base, size := range f.sizes {
		if uintptr(p) >= base && uintptr(p)+uintptr(n) <= base+uintptr(size) {
			all := unsafe.Slice((*byte)(unsafe.Pointer(&f.bufs[base][0])), size)
			return all[uintptr(p)-base:][:n], nil
		}
	}
	for base, x := range f.hosts {
		if size := 4 * len(x); uintptr(p) >= base && uintptr(p)+uintptr(n) <= base+uintptr(size) {
			all := unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), size)
			return all[uintptr(p)-base:][:n], nil
		}
	}
	return nil, fmt.Errorf("fake: %d bytes at %#x are not device memory", n, p)
}

func (f *fakeGPU) htod(dst uint64, src unsafe.Pointer, bytes int) error {
	if err := f.fail["htod"]; err != nil {
		return err
	}
	d, err := f.bytesAt(dst, bytes)
	if err != nil {
		return err
	}
	// The source is read now (the driver's staging copy of pageable
	// memory), the device written in stream order.
	data := append([]byte(nil), unsafe.Slice((*byte)(src), bytes)...)
	return f.exec(func() error { copy(d, data); return nil })
}

func (f *fakeGPU) dtoh(dst unsafe.Pointer, src uint64, bytes int) error {
	if err := f.fail["dtoh"]; err != nil {
		return err
	}
	s, err := f.bytesAt(src, bytes)
	if err != nil {
		return err
	}
	return f.exec(func() error { copy(unsafe.Slice((*byte)(dst), bytes), s); return nil })
}

func (f *fakeGPU) sync() error {
	f.syncs++
	err := f.drain()
	if e := f.fail["sync"]; e != nil {
		return e
	}
	return err
}

func (f *fakeGPU) prefetch(p uint64, bytes int) error {
	if _, err := f.bytesAt(p, bytes); err != nil {
		return err
	}
	f.prefetched += bytes
	return nil
}

func (f *fakeGPU) memInfo() (int64, int64, error) { return 1 << 30, 2 << 30, nil }

func (f *fakeGPU) close() error { f.closed = true; return nil }

// f32 views n float32s at p (nil for p == 0).
func (f *fakeGPU) f32(p uint64, n int) ([]float32, error) {
	if p == 0 {
		return nil, nil
	}
	b, err := f.bytesAt(p, 4*n)
	if err != nil || n == 0 {
		return nil, err
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n), nil
}

func (f *fakeGPU) f64(p uint64, n int) ([]float64, error) {
	b, err := f.bytesAt(p, 8*n)
	if err != nil || n == 0 {
		return nil, err
	}
	return unsafe.Slice((*float64)(unsafe.Pointer(&b[0])), n), nil
}

func (f *fakeGPU) i32(p uint64, n int) ([]int32, error) {
	if p == 0 {
		return nil, nil
	}
	b, err := f.bytesAt(p, 4*n)
	if err != nil || n == 0 {
		return nil, err
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(&b[0])), n), nil
}

func (f *fakeGPU) sgemm(transA, transB bool, m, n, k int, alpha float32, a uint64, lda int, b uint64, ldb int, beta float32, c uint64, ldc int) error {
	if err := f.fail["sgemm"]; err != nil {
		return err
	}
	f.gemms++
	return f.exec(func() error { return f.sgemmRun(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) })
}

// sgemmRun is sgemm's work.
func (f *fakeGPU) sgemmRun(transA, transB bool, m, n, k int, alpha float32, a uint64, lda int, b uint64, ldb int, beta float32, c uint64, ldc int) error {
	// Column-major: element (i, j) of a matrix with leading dimension ld
	// is at i + j*ld.
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if lda < max(1, ar) || ldb < max(1, br) || ldc < max(1, m) {
		return errors.New("fake: CUBLAS_STATUS_INVALID_VALUE (leading dimension)")
	}
	A, err := f.f32(a, (ac-1)*lda+ar)
	if err != nil {
		return err
	}
	B, err := f.f32(b, (bc-1)*ldb+br)
	if err != nil {
		return err
	}
	C, err := f.f32(c, (n-1)*ldc+m)
	if err != nil {
		return err
	}
	if f.fast {
		// Column-major C is row-major C^T = op(B)^T op(A)^T.
		nn.CPU{}.Gemm(transB, transA, n, m, k, alpha, B, ldb, A, lda, beta, C, ldc)
		return nil
	}
	for j := 0; j < n; j++ {
		for i := 0; i < m; i++ {
			var sum float64
			for l := 0; l < k; l++ {
				var av, bv float32
				if transA {
					av = A[l+i*lda]
				} else {
					av = A[i+l*lda]
				}
				if transB {
					bv = B[j+l*ldb]
				} else {
					bv = B[l+j*ldb]
				}
				sum += float64(av) * float64(bv)
			}
			v := alpha * float32(sum)
			if beta != 0 {
				v += beta * C[i+j*ldc]
			}
			C[i+j*ldc] = v
		}
	}
	return nil
}

func (f *fakeGPU) launch(name string, grid, block int, slots []uint64) error {
	if err := f.fail["launch:"+name]; err != nil {
		return err
	}
	if sig := kernelParams[name]; len(sig) != len(slots) {
		return fmt.Errorf("fake: %s got %d slots, signature %q", name, len(slots), sig)
	}
	if grid <= 0 || grid > maxGrid || block != blockThreads {
		return fmt.Errorf("fake: %s launched with grid %d block %d", name, grid, block)
	}
	slots = append([]uint64(nil), slots...)
	f.launches = append(f.launches, fakeLaunch{name, grid, block, slots})
	return f.exec(func() error { return f.run(name, slots) })
}

// run is a kernel's work.
func (f *fakeGPU) run(name string, slots []uint64) error {
	if k, ok := fakeKernels[name]; ok {
		return k(f, slots)
	}
	p := func(i int) uint64 { return slots[i] }
	I := func(i int) int { return int(int32(uint32(slots[i]))) }
	switch name {
	case "detlab_im2col", "detlab_col2im":
		C, H, W, KH, KW, SH, SW, PH, PW, OH, OW := I(2), I(3), I(4), I(5), I(6), I(7), I(8), I(9), I(10), I(11), I(12)
		var img, col []float32
		var err error
		if name == "detlab_im2col" {
			img, err = f.f32(p(0), C*H*W)
			if err == nil {
				col, err = f.f32(p(1), C*KH*KW*OH*OW)
			}
		} else {
			col, err = f.f32(p(0), C*KH*KW*OH*OW)
			if err == nil {
				img, err = f.f32(p(1), C*H*W)
			}
		}
		if err != nil {
			return err
		}
		for c := 0; c < C; c++ {
			for kh := 0; kh < KH; kh++ {
				for kw := 0; kw < KW; kw++ {
					for oh := 0; oh < OH; oh++ {
						for ow := 0; ow < OW; ow++ {
							ih, iw := oh*SH-PH+kh, ow*SW-PW+kw
							ci := (((c*KH+kh)*KW+kw)*OH+oh)*OW + ow
							inside := ih >= 0 && ih < H && iw >= 0 && iw < W
							switch {
							case name == "detlab_im2col" && inside:
								col[ci] = img[(c*H+ih)*W+iw]
							case name == "detlab_im2col":
								col[ci] = 0
							case inside:
								img[(c*H+ih)*W+iw] += col[ci]
							}
						}
					}
				}
			}
		}
	case "detlab_bias_add":
		N, K, HW := I(2), I(3), I(4)
		y, err := f.f32(p(0), N*K*HW)
		if err != nil {
			return err
		}
		bias, err := f.f32(p(1), K)
		if err != nil {
			return err
		}
		for i := range y {
			y[i] += bias[i/HW%K]
		}
	case "detlab_channel_sum_add":
		N, C, HW := I(2), I(3), I(4)
		x, err := f.f32(p(0), N*C*HW)
		if err != nil {
			return err
		}
		out, err := f.f32(p(1), C)
		if err != nil {
			return err
		}
		sums := make([]float64, C)
		for i, v := range x {
			sums[i/HW%C] += float64(v)
		}
		for c := range out {
			out[c] += float32(sums[c])
		}
	case "detlab_channel_stats":
		N, C, HW := I(1), I(2), I(3)
		x, err := f.f32(p(0), N*C*HW)
		if err != nil {
			return err
		}
		mean, err := f.f64(p(4), C)
		if err != nil {
			return err
		}
		vr, err := f.f64(p(5), C)
		if err != nil {
			return err
		}
		cnt := float64(N * HW)
		for c := 0; c < C; c++ {
			var s, q float64
			for n := 0; n < N; n++ {
				for _, v := range x[(n*C+c)*HW:][:HW] {
					s += float64(v)
				}
			}
			m := s / cnt
			for n := 0; n < N; n++ {
				for _, v := range x[(n*C+c)*HW:][:HW] {
					q += (float64(v) - m) * (float64(v) - m)
				}
			}
			mean[c], vr[c] = m, q/cnt
		}
	case "detlab_channel_affine":
		N, C, HW, relu := I(2), I(3), I(4), I(7)
		x, err := f.f32(p(0), N*C*HW)
		if err != nil {
			return err
		}
		y, err := f.f32(p(1), N*C*HW)
		if err != nil {
			return err
		}
		sc, err := f.f32(p(5), C)
		if err != nil {
			return err
		}
		sh, err := f.f32(p(6), C)
		if err != nil {
			return err
		}
		for i, v := range x {
			c := i / HW % C
			o := v*sc[c] + sh[c]
			if relu != 0 && !(o > 0) && o == o { // detlab_relu_f
				o = 0
			}
			y[i] = o
		}
	case "detlab_maxpool2d":
		P, H, W, KH, KW, SH, SW, PH, PW, OH, OW := I(3), I(4), I(5), I(6), I(7), I(8), I(9), I(10), I(11), I(12), I(13)
		x, err := f.f32(p(0), P*H*W)
		if err != nil {
			return err
		}
		y, err := f.f32(p(1), P*OH*OW)
		if err != nil {
			return err
		}
		arg, err := f.i32(p(2), P*OH*OW)
		if err != nil {
			return err
		}
		for pl := 0; pl < P; pl++ {
			for oh := 0; oh < OH; oh++ {
				for ow := 0; ow < OW; ow++ {
					best, bi := float32(math.Inf(-1)), -1
					for kh := 0; kh < KH; kh++ {
						for kw := 0; kw < KW; kw++ {
							ih, iw := oh*SH-PH+kh, ow*SW-PW+kw
							if ih < 0 || ih >= H || iw < 0 || iw >= W {
								continue
							}
							v := x[(pl*H+ih)*W+iw]
							if bi < 0 || (best == best && (v > best || v != v)) {
								best, bi = v, ih*W+iw
							}
						}
					}
					o := (pl*OH+oh)*OW + ow
					y[o] = best
					if arg != nil {
						arg[o] = int32(bi)
					}
				}
			}
		}
	case "detlab_maxpool2d_backward":
		P, H, W, OH, OW := I(3), I(4), I(5), I(6), I(7)
		dy, err := f.f32(p(0), P*OH*OW)
		if err != nil {
			return err
		}
		dx, err := f.f32(p(1), P*H*W)
		if err != nil {
			return err
		}
		arg, err := f.i32(p(2), P*OH*OW)
		if err != nil {
			return err
		}
		for i, g := range dy {
			dx[i/(OH*OW)*H*W+int(arg[i])] += g
		}
	case "detlab_add", "detlab_relu", "detlab_relu_backward", "detlab_round_bf16", "detlab_round_fp16":
		return f.elementwise(name, slots)
	case "detlab_sgd_step":
		n := I(3)
		F := func(i int) float32 { return math.Float32frombits(uint32(slots[i])) }
		lr, mom, damp, wd, nesterov, first := F(4), F(5), F(6), F(7), I(8) != 0, I(9) != 0
		w, err := f.f32(p(0), n)
		if err != nil {
			return err
		}
		g, err := f.f32(p(1), n)
		if err != nil {
			return err
		}
		buf, err := f.f32(p(2), n)
		if err != nil {
			return err
		}
		for i := range w {
			d := g[i] + wd*w[i]
			if buf != nil {
				if first {
					buf[i] = d
				} else {
					buf[i] = mom*buf[i] + (1-damp)*d
				}
				if nesterov {
					d += mom * buf[i]
				} else {
					d = buf[i]
				}
			}
			w[i] -= lr * d
		}
	case "detlab_nonfinite":
		x, err := f.f32(p(0), I(1))
		if err != nil {
			return err
		}
		flag, err := f.i32(p(2), 1)
		if err != nil {
			return err
		}
		for _, v := range x {
			if v-v != 0 {
				flag[0] = 1
			}
		}
	case "detlab_scale":
		x, err := f.f32(p(0), I(1))
		if err != nil {
			return err
		}
		sc := math.Float32frombits(uint32(slots[2]))
		for i := range x {
			x[i] *= sc
		}
	default:
		return fmt.Errorf("fake: kernel %s not emulated", name)
	}
	return nil
}

// elementwise emulates the kernels over n elements with three or fewer
// pointer operands.
func (f *fakeGPU) elementwise(name string, slots []uint64) error {
	var ptrs int
	switch name {
	case "detlab_add", "detlab_relu_backward":
		ptrs = 3
	default:
		ptrs = 2
	}
	n := int(int32(uint32(slots[ptrs])))
	ops := make([][]float32, ptrs)
	for i := range ops {
		var err error
		if ops[i], err = f.f32(slots[i], n); err != nil {
			return err
		}
	}
	for i := 0; i < n; i++ {
		switch name {
		case "detlab_add":
			v := ops[0][i] + ops[1][i]
			if slots[4] != 0 && !(v > 0) && v == v { // ops.h's detlab_relu_f: -0 -> +0, NaN stays
				v = 0
			}
			ops[2][i] = v
		case "detlab_relu":
			v := ops[0][i]
			if !(v > 0) && v == v {
				v = 0
			}
			ops[1][i] = v
		case "detlab_relu_backward":
			if ops[0][i] > 0 {
				ops[2][i] += ops[1][i]
			}
		case "detlab_round_bf16":
			ops[1][i] = nn.RoundBF16(ops[0][i])
		case "detlab_round_fp16":
			ops[1][i] = nn.RoundFP16(ops[0][i])
		}
	}
	return nil
}
