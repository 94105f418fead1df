package cuda

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"

	"github.com/detlab/detlab/lib/nn"
)

func newFakeBackend(pageable bool) (*Backend, *fakeGPU) {
	f := newFakeGPU()
	return newBackend(f, 0, "cuda:0 (fake)", pageable), f
}

// memKind is where an op's operands live in a test.
type memKind string

const (
	goMem       memKind = "go"       // ordinary Go memory: staged
	managedMem  memKind = "managed"  // Backend.Alloc
	pageableMem memKind = "pageable" // Go memory on a device that reads it
)

// opCase runs one Backend operation; buf puts a slice's contents into the
// memory under test. It returns the outputs to compare.
type opCase struct {
	name string
	run  func(be nn.Backend, buf func([]float32) []float32) [][]float32
}

func randSlice(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func convOut(h, k, s, p int) int { return (h+2*p-k)/s + 1 }

func convCase(n, c, h, w, k, kh, s, p int, bias, backward bool, seed uint64) opCase {
	geo := nn.ConvGeom{N: n, C: c, H: h, W: w, K: k, KH: kh, KW: kh, SH: s, SW: s, PH: p, PW: p,
		OH: convOut(h, kh, s, p), OW: convOut(w, kh, s, p)}
	name := fmt.Sprintf("conv n%d c%d %dx%d k%d %dx%d s%d p%d bias=%v", n, c, h, w, k, kh, kh, s, p, bias)
	if backward {
		name = "backward " + name
	}
	return opCase{name: name, run: func(be nn.Backend, buf func([]float32) []float32) [][]float32 {
		rng := rand.New(rand.NewPCG(seed, 1))
		x := buf(randSlice(rng, n*c*h*w))
		wt := buf(randSlice(rng, k*c*kh*kh))
		ohw := geo.OH * geo.OW
		var b []float32
		if bias {
			b = buf(randSlice(rng, k))
		}
		if !backward {
			y := buf(randSlice(rng, n*k*ohw)) // garbage: must be overwritten
			be.Conv2d(geo, x, wt, b, y, nn.NewArena())
			return [][]float32{y}
		}
		dy := buf(randSlice(rng, n*k*ohw))
		dx, dw := buf(randSlice(rng, len(x))), buf(randSlice(rng, len(wt))) // accumulated into
		if !bias {
			be.Conv2dBackward(geo, x, wt, dy, dx, dw, nil, nn.NewArena())
			return [][]float32{dx, dw}
		}
		db := buf(randSlice(rng, k))
		be.Conv2dBackward(geo, x, wt, dy, dx, dw, db, nn.NewArena())
		// Only some gradients wanted.
		dw2 := buf(make([]float32, len(wt)))
		be.Conv2dBackward(geo, x, wt, dy, nil, dw2, nil, nn.NewArena())
		dx2 := buf(make([]float32, len(x)))
		be.Conv2dBackward(geo, x, wt, dy, dx2, nil, nil, nn.NewArena())
		return [][]float32{dx, dw, db, dw2, dx2}
	}}
}

func gemmCase(ta, tb bool, m, n, k, pad int, beta float32, seed uint64) opCase {
	return opCase{name: fmt.Sprintf("gemm ta=%v tb=%v %dx%dx%d pad%d beta%v", ta, tb, m, n, k, pad, beta),
		run: func(be nn.Backend, buf func([]float32) []float32) [][]float32 {
			rng := rand.New(rand.NewPCG(seed, 2))
			ar, ac := m, k
			if ta {
				ar, ac = k, m
			}
			br, bc := k, n
			if tb {
				br, bc = n, k
			}
			lda, ldb, ldc := ac+pad, bc+pad, n+pad
			a := buf(randSlice(rng, ar*lda))
			b := buf(randSlice(rng, br*ldb))
			c := buf(randSlice(rng, m*ldc)) // the gaps (pad) must survive
			be.Gemm(ta, tb, m, n, k, 0.75, a, lda, b, ldb, beta, c, ldc)
			return [][]float32{c}
		}}
}

func bnCase(n, c, hw int, relu, alias bool, seed uint64) opCase {
	return opCase{name: fmt.Sprintf("batchnorm n%d c%d hw%d relu=%v alias=%v", n, c, hw, relu, alias),
		run: func(be nn.Backend, buf func([]float32) []float32) [][]float32 {
			rng := rand.New(rand.NewPCG(seed, 3))
			x := buf(randSlice(rng, n*c*hw))
			mean, vr := make([]float64, c), make([]float64, c)
			be.ChannelStats(x, n, c, hw, mean, vr)
			scale, shift := buf(randSlice(rng, c)), buf(randSlice(rng, c))
			y := x
			if !alias {
				y = buf(make([]float32, len(x)))
			}
			be.ChannelAffine(x, y, n, c, hw, scale, shift, relu)
			st := make([]float32, 0, 2*c)
			for i := range mean {
				st = append(st, float32(mean[i]), float32(vr[i]))
			}
			return [][]float32{st, y}
		}}
}

func poolCase(planes, h, w, k, s, p int, withNaN bool, seed uint64) opCase {
	geo := nn.PoolGeom{Planes: planes, H: h, W: w, KH: k, KW: k, SH: s, SW: s, PH: p, PW: p,
		OH: convOut(h, k, s, p), OW: convOut(w, k, s, p)}
	return opCase{name: fmt.Sprintf("maxpool %dx%dx%d k%d s%d p%d nan=%v", planes, h, w, k, s, p, withNaN),
		run: func(be nn.Backend, buf func([]float32) []float32) [][]float32 {
			rng := rand.New(rand.NewPCG(seed, 4))
			xs := randSlice(rng, planes*h*w)
			for i := range xs {
				if i%7 == 3 {
					xs[i] = xs[i-1] // ties: the first maximum must win
				}
			}
			if withNaN {
				xs[len(xs)/2] = float32(math.NaN())
			}
			x := buf(xs)
			out := planes * geo.OH * geo.OW
			y := buf(make([]float32, out))
			y2 := buf(make([]float32, out))
			arg := make([]int32, out)
			be.MaxPool2d(geo, x, y, arg)
			be.MaxPool2d(geo, x, y2, nil)
			dy := buf(randSlice(rng, out))
			dx := buf(randSlice(rng, len(xs)))
			be.MaxPool2dBackward(geo, dy, dx, arg)
			af := make([]float32, len(arg))
			for i, a := range arg {
				af[i] = float32(a)
			}
			return [][]float32{y, y2, af, dx}
		}}
}

func opCases() []opCase {
	return []opCase{
		convCase(2, 3, 9, 11, 4, 3, 1, 1, true, false, 1),
		convCase(2, 3, 9, 11, 4, 3, 1, 1, true, true, 2),
		convCase(1, 5, 10, 7, 6, 3, 2, 1, false, false, 3),
		convCase(3, 5, 10, 7, 6, 3, 2, 1, false, true, 4),
		convCase(2, 4, 6, 5, 3, 1, 1, 0, true, false, 5), // pointwise: no im2col
		convCase(2, 4, 6, 5, 3, 1, 1, 0, true, true, 6),
		convCase(2, 4, 7, 6, 3, 1, 2, 0, false, true, 7), // 1x1 stride 2 needs im2col
		convCase(1, 3, 17, 13, 8, 7, 2, 3, true, true, 8),
		gemmCase(false, false, 7, 5, 9, 0, 0, 1),
		gemmCase(true, false, 7, 5, 9, 2, 1, 2),
		gemmCase(false, true, 7, 5, 9, 1, 0.5, 3),
		gemmCase(true, true, 3, 8, 4, 3, 0, 4),
		gemmCase(false, false, 4, 6, 0, 1, 0.5, 5), // k = 0: C scaled on the host
		bnCase(2, 3, 20, false, false, 1),
		bnCase(3, 5, 7, true, true, 2),
		bnCase(1, 4, 30000, true, false, 3), // large: passed directly when pageable
		poolCase(3, 9, 10, 3, 2, 1, false, 1),
		poolCase(2, 8, 8, 2, 2, 0, true, 2),
	}
}

func closeTo(got, want float32) bool {
	if got != got || want != want {
		return got != got && want != want
	}
	return math.Abs(float64(got-want)) <= 1e-4+1e-4*math.Abs(float64(want))
}

func compareOutputs(t *testing.T, label string, got, want [][]float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d outputs, want %d", label, len(got), len(want))
	}
	for o := range want {
		if len(got[o]) != len(want[o]) {
			t.Fatalf("%s output %d: %d elements, want %d", label, o, len(got[o]), len(want[o]))
		}
		for i := range want[o] {
			if !closeTo(got[o][i], want[o][i]) {
				t.Fatalf("%s output %d [%d]: got %v, want %v (nn.CPU)", label, o, i, got[o][i], want[o][i])
			}
		}
	}
}

// TestBackendMatchesCPU runs every Backend operation through the fake
// device and compares with nn.CPU, for operands in Go memory (staged), in
// managed memory (passed as they are) and in Go memory on a device with
// pageable access (large ones passed as they are).
func TestBackendMatchesCPU(t *testing.T) {
	clone := func(x []float32) []float32 { return append([]float32(nil), x...) }
	for _, tc := range opCases() {
		want := tc.run(nn.CPU{}, clone)
		for _, kind := range []memKind{goMem, managedMem, pageableMem} {
			b, f := newFakeBackend(kind == pageableMem)
			buf := clone
			switch kind {
			case managedMem:
				buf = func(x []float32) []float32 {
					y, err := b.TryAlloc(len(x))
					if err != nil {
						t.Fatal(err)
					}
					copy(y, x)
					return y
				}
			case pageableMem:
				buf = func(x []float32) []float32 {
					y := clone(x)
					if len(y) > 0 {
						f.host(y)
					}
					return y
				}
			}
			got := tc.run(b, buf)
			label := tc.name + " [" + string(kind) + "]"
			compareOutputs(t, label, got, want)
			if f.depth != 0 {
				t.Errorf("%s: begin/end unbalanced (depth %d)", label, f.depth)
			}
			if st := b.Stats(); kind == managedMem && st.StagedBytes > 4*64 {
				// Only the float64 statistics and int32 argmax (Go memory
				// the ops receive) may be staged.
				if !strings.HasPrefix(tc.name, "batchnorm") && !strings.HasPrefix(tc.name, "maxpool") {
					t.Errorf("%s: %d bytes staged with managed operands", label, st.StagedBytes)
				}
			}
			if err := b.Close(); err != nil {
				t.Fatalf("%s: Close: %v", label, err)
			}
			if f.live() != 0 {
				t.Errorf("%s: %d device allocations left after Close", label, f.live())
			}
		}
	}
}

// TestStaging checks which slices reach kernels as they are and which go
// through a device copy.
func TestStaging(t *testing.T) {
	ptr := func(x []float32) uint64 { return uint64(uintptr(unsafe.Pointer(&x[0]))) }
	const n, c = 1, 2
	for _, tc := range []struct {
		name     string
		pageable bool
		managed  bool
		hw       int
		direct   bool
	}{
		{"go memory is staged", false, false, 8, false},
		{"managed memory is passed", false, true, 8, true},
		{"small go memory is staged even with pageable access", true, false, 8, false},
		{"large go memory is passed with pageable access", true, false, directMinBytes, true},
		{"large go memory is staged without pageable access", false, false, directMinBytes, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, f := newFakeBackend(tc.pageable)
			defer b.Close()
			x := make([]float32, n*c*tc.hw)
			if tc.managed {
				x = b.Alloc(len(x))
			} else if tc.pageable {
				f.host(x)
			}
			scale, shift := []float32{1, 2}, []float32{0, 1}
			b.ChannelAffine(x, x, n, c, tc.hw, scale, shift, false)
			if len(f.launches) != 1 {
				t.Fatalf("%d launches, want 1", len(f.launches))
			}
			l := f.launches[0]
			if got := l.slots[0] == ptr(x); got != tc.direct {
				t.Errorf("x passed directly: %v, want %v", got, tc.direct)
			}
			if l.slots[0] != l.slots[1] {
				t.Errorf("aliased x and y got different device addresses %#x, %#x", l.slots[0], l.slots[1])
			}
			if l.slots[5] == ptr(scale) {
				t.Errorf("a 2-element Go slice was passed to the device unstaged")
			}
			if x[len(x)/2+1] != 1 { // channel 1: 0*2+1
				t.Errorf("result not visible on the host: %v", x[len(x)/2+1])
			}
		})
	}
}

func TestAllocFreeMemoryStats(t *testing.T) {
	b, f := newFakeBackend(false)
	x := b.Alloc(100)
	y := b.Alloc(50)
	if len(x) != 100 || len(y) != 50 {
		t.Fatalf("Alloc lengths %d, %d", len(x), len(y))
	}
	for _, v := range x {
		if v != 0 {
			t.Fatal("Alloc not zeroed")
		}
	}
	if in, peak := b.MemoryStats(); in != 600 || peak != 600 {
		t.Fatalf("MemoryStats = %d, %d; want 600, 600", in, peak)
	}
	b.Free(x)
	b.Free(x)                   // double free: ignored
	b.Free(make([]float32, 10)) // not ours: ignored
	if in, peak := b.MemoryStats(); in != 200 || peak != 600 {
		t.Fatalf("after Free: MemoryStats = %d, %d; want 200, 600", in, peak)
	}
	b.ResetPeak()
	if _, peak := b.MemoryStats(); peak != 200 {
		t.Fatalf("after ResetPeak: peak %d, want 200", peak)
	}
	if f.live() != 1 {
		t.Fatalf("%d live allocations, want 1", f.live())
	}
	// A slice running past its allocation is an error, not Go memory.
	long := unsafe.Slice(&y[0], 60)
	func() {
		defer func() {
			r := recover()
			var oe *OpError
			if e, ok := r.(error); !ok || !errors.As(e, &oe) || !strings.Contains(e.Error(), "runs past the end") {
				t.Errorf("overrunning slice: panic %v, want an *OpError about the allocation's end", r)
			}
		}()
		b.ChannelAffine(long, long, 1, 1, 60, []float32{1}, []float32{0}, false)
	}()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if f.live() != 0 || !f.closed {
		t.Fatalf("Close left %d allocations (closed %v)", f.live(), f.closed)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.TryAlloc(4); !errors.Is(err, ErrClosed) {
		t.Fatalf("TryAlloc after Close: %v, want ErrClosed", err)
	}
	if z := b.Alloc(4); len(z) != 4 {
		t.Fatalf("Alloc after Close: len %d, want 4 (Go memory)", len(z))
	}
	func() {
		defer func() {
			if e, ok := recover().(error); !ok || !errors.Is(e, ErrClosed) {
				t.Errorf("op after Close: panic %v, want ErrClosed", e)
			}
		}()
		b.ChannelAffine([]float32{1}, []float32{1}, 1, 1, 1, []float32{1}, []float32{0}, false)
	}()
}

func TestAllocFallsBackToGoMemory(t *testing.T) {
	b, f := newFakeBackend(false)
	defer b.Close()
	f.fail["allocManaged"] = &Error{Op: "cuMemAllocManaged", Code: 2, Name: "CUDA_ERROR_OUT_OF_MEMORY", Desc: "out of memory"}
	if _, err := b.TryAlloc(8); err == nil || !strings.Contains(err.Error(), "CUDA_ERROR_OUT_OF_MEMORY") {
		t.Fatalf("TryAlloc: %v, want the out-of-memory error", err)
	}
	x := b.Alloc(8)
	if len(x) != 8 {
		t.Fatalf("Alloc: len %d", len(x))
	}
	if in, _ := b.MemoryStats(); in != 0 {
		t.Fatalf("fallback memory counted as device memory: %d", in)
	}
	// Still usable by the kernels (staged).
	b.ChannelAffine(x, x, 1, 2, 4, []float32{1, 1}, []float32{1, 2}, false)
	if x[7] != 2 {
		t.Fatalf("op on fallback memory: %v", x)
	}
}

// TestOpFailure: a device failure panics with an *OpError naming the
// operation and the CUDA error, Err keeps it, and no device buffer leaks.
func TestOpFailure(t *testing.T) {
	cudaErr := &Error{Op: "cuLaunchKernel", Code: 700, Name: "CUDA_ERROR_ILLEGAL_ADDRESS", Desc: "an illegal memory access was encountered"}
	for _, tc := range []struct {
		key, op string
		run     func(b *Backend)
	}{
		{"launch:detlab_im2col", "Conv2d", func(b *Backend) {
			geo := nn.ConvGeom{N: 1, C: 1, H: 4, W: 4, K: 1, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: 4, OW: 4}
			b.Conv2d(geo, make([]float32, 16), make([]float32, 9), nil, make([]float32, 16), nil)
		}},
		{"sgemm", "Gemm", func(b *Backend) {
			b.Gemm(false, false, 2, 2, 2, 1, make([]float32, 4), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2)
		}},
		{"sync", "ChannelAffine", func(b *Backend) {
			b.ChannelAffine(make([]float32, 4), make([]float32, 4), 1, 1, 4, []float32{1}, []float32{0}, true)
		}},
		{"alloc", "MaxPool2dBackward", func(b *Backend) {
			geo := nn.PoolGeom{Planes: 1, H: 2, W: 2, KH: 2, KW: 2, SH: 2, SW: 2, OH: 1, OW: 1}
			b.MaxPool2dBackward(geo, make([]float32, 1), make([]float32, 4), make([]int32, 1))
		}},
	} {
		t.Run(tc.key, func(t *testing.T) {
			b, f := newFakeBackend(false)
			f.fail[tc.key] = cudaErr
			func() {
				defer func() {
					r := recover()
					e, ok := r.(error)
					var oe *OpError
					if !ok || !errors.As(e, &oe) || oe.Op != tc.op || !errors.Is(e, cudaErr) {
						t.Fatalf("panic %v, want *OpError{%s} wrapping the CUDA error", r, tc.op)
					}
					want := "cuda: " + tc.op + ": cuLaunchKernel: CUDA_ERROR_ILLEGAL_ADDRESS (an illegal memory access was encountered)"
					if e.Error() != want {
						t.Errorf("message %q, want %q", e.Error(), want)
					}
				}()
				tc.run(b)
			}()
			if !errors.Is(b.Err(), cudaErr) {
				t.Errorf("Err() = %v", b.Err())
			}
			if f.depth != 0 {
				t.Errorf("begin/end unbalanced after a failure: depth %d", f.depth)
			}
			b.Close()
			if f.live() != 0 {
				t.Errorf("%d device buffers leaked", f.live())
			}
		})
	}
}

func TestShortOperands(t *testing.T) {
	b, _ := newFakeBackend(false)
	defer b.Close()
	geo := nn.ConvGeom{N: 2, C: 1, H: 4, W: 4, K: 1, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: 4, OW: 4}
	defer func() {
		e, ok := recover().(error)
		if !ok || !strings.Contains(e.Error(), "cuda: Conv2d: x has 16 elements, the geometry needs 32") {
			t.Fatalf("panic %v, want the short-x error", e)
		}
	}()
	b.Conv2d(geo, make([]float32, 16), make([]float32, 9), nil, make([]float32, 32), nil)
}

// TestConvLaunchConfig checks the kernels Conv2d launches and their grids.
func TestConvLaunchConfig(t *testing.T) {
	b, f := newFakeBackend(false)
	defer b.Close()
	geo := nn.ConvGeom{N: 3, C: 64, H: 56, W: 56, K: 2, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: 56, OW: 56}
	b.Conv2d(geo, make([]float32, 3*64*56*56), make([]float32, 2*64*9), make([]float32, 2), make([]float32, 3*2*56*56), nil)
	var names []string
	for _, l := range f.launches {
		names = append(names, fmt.Sprintf("%s/%d", l.name, l.grid))
	}
	want := "detlab_im2col/7056 detlab_im2col/7056 detlab_im2col/7056 detlab_bias_add/74"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("launches %s, want %s", got, want)
	}
	if f.gemms != 3 {
		t.Errorf("%d GEMMs, want one per image (3)", f.gemms)
	}
}

func TestPrefetch(t *testing.T) {
	b, f := newFakeBackend(false)
	x := b.Alloc(64)
	if err := b.Prefetch(x[16:32]); err != nil || f.prefetched != 64 {
		t.Fatalf("Prefetch of managed memory: %v, %d bytes", err, f.prefetched)
	}
	if err := b.Prefetch(make([]float32, 8)); err != nil || f.prefetched != 64 {
		t.Fatalf("Prefetch of Go memory: %v, %d bytes prefetched (want none)", err, f.prefetched)
	}
	if err := b.Prefetch(unsafe.Slice(&x[60], 8)); err == nil {
		t.Fatal("Prefetch of a slice overrunning its allocation: no error")
	}
	b.Close()
	if err := b.Prefetch(x); !errors.Is(err, ErrClosed) {
		t.Fatalf("Prefetch after Close: %v", err)
	}
}

func TestPrefetchOperands(t *testing.T) {
	b, f := newFakeBackend(false)
	defer b.Close()
	big := b.Alloc(prefetchMinBytes / 4)
	small := b.Alloc(16)
	goMem := make([]float32, prefetchMinBytes/4)
	for _, on := range []bool{false, true} {
		b.SetPrefetchOperands(on)
		f.prefetched = 0
		b.ReLU(big, big)
		b.ReLU(small, small)
		b.ReLU(goMem, goMem)
		want := 0
		if on {
			want = prefetchMinBytes
		}
		if f.prefetched != want {
			t.Errorf("SetPrefetchOperands(%v): %d bytes prefetched, want %d (only the large managed operand, once)", on, f.prefetched, want)
		}
	}
}
