package cuda

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"sync"
	"testing"
	"unsafe"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/nn"
)

// The fake device's half of autocast: half.cu's kernels as Go loops
// (written from kernels.h and the formats' definitions), and gemmEx as the
// fake's float32 GEMM on the decoded 16-bit operands.

func init() {
	fakeKernels["detlab_to_bf16"] = func(f *fakeGPU, s []uint64) error { return f.toHalf(s, bf16Bits) }
	fakeKernels["detlab_to_fp16"] = func(f *fakeGPU, s []uint64) error { return f.toHalf(s, fp16Bits) }
	fakeKernels["detlab_im2col_bf16"] = func(f *fakeGPU, s []uint64) error { return f.im2colHalf(s, bf16Bits) }
	fakeKernels["detlab_im2col_fp16"] = func(f *fakeGPU, s []uint64) error { return f.im2colHalf(s, fp16Bits) }
}

// bf16Bits is the bfloat16 encoding of nn.RoundBF16(v): its high half.
func bf16Bits(v float32) uint16 { return uint16(math.Float32bits(nn.RoundBF16(v)) >> 16) }

// fp16Bits is the IEEE binary16 encoding of nn.RoundFP16(v) (a NaN: the
// quiet NaN of its sign).
func fp16Bits(v float32) uint16 {
	r := float64(nn.RoundFP16(v))
	var sign uint16
	if math.Signbit(r) {
		sign = 0x8000
	}
	a := math.Abs(r)
	switch {
	case math.IsNaN(a):
		return sign | 0x7e00
	case math.IsInf(a, 1):
		return sign | 0x7c00
	case a < 1.0/(1<<14): // subnormal: a multiple of 2^-24
		return sign | uint16(a*(1<<24))
	}
	frac, exp := math.Frexp(a) // a = frac * 2^exp, frac in [0.5, 1)
	return sign | uint16(exp-1+15)<<10 | uint16((2*frac-1)*1024)
}

// bf16Value and fp16Value widen encodings to float32.
func bf16Value(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

func fp16Value(h uint16) float32 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e, m := int(h>>10)&0x1f, float64(h&0x3ff)
	switch e {
	case 0:
		return float32(sign * m * math.Ldexp(1, -24))
	case 0x1f:
		if m != 0 {
			return float32(math.NaN())
		}
		return float32(sign * math.Inf(1))
	}
	return float32(sign * (1 + m/1024) * math.Ldexp(1, e-15))
}

func (f *fakeGPU) u16(p uint64, n int) ([]uint16, error) {
	if p == 0 {
		return nil, nil
	}
	b, err := f.bytesAt(p, 2*n)
	if err != nil || n == 0 {
		return nil, err
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), n), nil
}

func halfSlot(s []uint64, i int) int { return int(int32(uint32(s[i]))) }

func (f *fakeGPU) toHalf(s []uint64, enc func(float32) uint16) error {
	n := halfSlot(s, 2)
	x, err := f.f32(s[0], n)
	if err != nil {
		return err
	}
	y, err := f.u16(s[1], n)
	if err != nil {
		return err
	}
	for i, v := range x {
		y[i] = enc(v)
	}
	return nil
}

// im2colHalf: col (C*KH*KW, N*ldn), row (c*KH+kh)*KW+kw, column
// n*ldn + oh*OW + ow, from x (N,C,H,W) with zero padding; columns
// OH*OW..ldn-1 of each image zero.
func (f *fakeGPU) im2colHalf(s []uint64, enc func(float32) uint16) error {
	N, C, H, W := halfSlot(s, 2), halfSlot(s, 3), halfSlot(s, 4), halfSlot(s, 5)
	KH, KW, SH, SW := halfSlot(s, 6), halfSlot(s, 7), halfSlot(s, 8), halfSlot(s, 9)
	PH, PW, OH, OW, ldn := halfSlot(s, 10), halfSlot(s, 11), halfSlot(s, 12), halfSlot(s, 13), halfSlot(s, 14)
	if ldn < OH*OW {
		return fmt.Errorf("fake: im2col ldn %d < OH*OW %d", ldn, OH*OW)
	}
	x, err := f.f32(s[0], N*C*H*W)
	if err != nil {
		return err
	}
	cols := N * ldn
	col, err := f.u16(s[1], C*KH*KW*cols)
	if err != nil {
		return err
	}
	clear(col)
	for c := 0; c < C; c++ {
		for kh := 0; kh < KH; kh++ {
			for kw := 0; kw < KW; kw++ {
				row := col[((c*KH+kh)*KW+kw)*cols:][:cols]
				for n := 0; n < N; n++ {
					for oh := 0; oh < OH; oh++ {
						for ow := 0; ow < OW; ow++ {
							ih, iw := oh*SH-PH+kh, ow*SW-PW+kw
							var v float32
							if ih >= 0 && ih < H && iw >= 0 && iw < W {
								v = x[((n*C+c)*H+ih)*W+iw]
							}
							row[n*ldn+oh*OW+ow] = enc(v)
						}
					}
				}
			}
		}
	}
	return nil
}

// fakeHalf records, per fake device, which precisions its gemmEx
// multiplies (all by default) and how many gemmEx calls it served.
var fakeHalf = struct {
	sync.Mutex
	off   map[*fakeGPU]bool
	calls map[*fakeGPU]int
}{off: map[*fakeGPU]bool{}, calls: map[*fakeGPU]int{}}

func (f *fakeGPU) halfGemm(p nn.Precision) bool {
	fakeHalf.Lock()
	defer fakeHalf.Unlock()
	return (p == nn.BFloat16 || p == nn.Float16) && !fakeHalf.off[f]
}

func (f *fakeGPU) gemmExCalls() int {
	fakeHalf.Lock()
	defer fakeHalf.Unlock()
	return fakeHalf.calls[f]
}

// gemmEx decodes each batch entry's 16-bit A and B into float32 device
// buffers and runs the fake's sgemm on them: the product of the rounded
// operands with float32 results, as cublasGemmEx with CUBLAS_COMPUTE_32F.
func (f *fakeGPU) gemmEx(p nn.Precision, transA, transB bool, m, n, k int, alpha float32, a uint64, lda int, strideA int64,
	b uint64, ldb int, strideB int64, beta float32, c uint64, ldc int, strideC int64, batch int) error {
	if !f.halfGemm(p) {
		return fmt.Errorf("fake: gemmEx in %v, which the device does not multiply", p)
	}
	if err := f.fail["gemmEx"]; err != nil {
		return err
	}
	fakeHalf.Lock()
	fakeHalf.calls[f]++
	fakeHalf.Unlock()
	return f.exec(func() error {
		return f.gemmExRun(p, transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch)
	})
}

// gemmExRun is gemmEx's work.
func (f *fakeGPU) gemmExRun(p nn.Precision, transA, transB bool, m, n, k int, alpha float32, a uint64, lda int, strideA int64,
	b uint64, ldb int, strideB int64, beta float32, c uint64, ldc int, strideC int64, batch int) error {
	dec := bf16Value
	if p == nn.Float16 {
		dec = fp16Value
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if batch < 1 || lda < max(1, ar) || ldb < max(1, br) || ldc < max(1, m) {
		return errors.New("fake: CUBLAS_STATUS_INVALID_VALUE (gemmEx)")
	}
	na, nb := (ac-1)*lda+ar, (bc-1)*ldb+br
	fa, err := f.alloc(4 * na)
	if err != nil {
		return err
	}
	defer f.free(fa)
	fb, err := f.alloc(4 * nb)
	if err != nil {
		return err
	}
	defer f.free(fb)
	for i := 0; i < batch; i++ {
		for _, op := range []struct {
			src    uint64
			stride int64
			dst    uint64
			n      int
		}{{a, strideA, fa, na}, {b, strideB, fb, nb}} {
			h, err := f.u16(op.src+uint64(2*int64(i)*op.stride), op.n)
			if err != nil {
				return err
			}
			d, err := f.f32(op.dst, op.n)
			if err != nil {
				return err
			}
			for j, v := range h {
				d[j] = dec(v)
			}
		}
		if err := f.sgemm(transA, transB, m, n, k, alpha, fa, lda, fb, ldb, beta, c+uint64(4*int64(i)*strideC), ldc); err != nil {
			return err
		}
	}
	return nil
}

// TestHalfEncodings checks the fake's encoders against the formats'
// tables and the decoders against nn's rounding, on the values that
// matter (ties, subnormals, overflow, NaN, Inf).
func TestHalfEncodings(t *testing.T) {
	for _, c := range []struct {
		v          float32
		bf16, fp16 uint16
	}{
		{1, 0x3f80, 0x3c00}, {-2, 0xc000, 0xc000}, {65504, 0x4780, 0x7bff}, {65520, 0x4780, 0x7c00},
		{1.0 / (1 << 14), 0x3880, 0x0400}, {1.0 / (1 << 24), 0x3380, 0x0001}, {1.0 / (1 << 25), 0x3300, 0},
		{3.0 / (1 << 25), 0x33c0, 0x0002}, {float32(math.Copysign(0, -1)), 0x8000, 0x8000},
		{float32(math.Inf(-1)), 0xff80, 0xfc00}, {math.Float32frombits(0x3f818000), 0x3f82, 0x3c0c},
	} {
		if g := bf16Bits(c.v); g != c.bf16 {
			t.Errorf("bf16Bits(%v) = %#04x, want %#04x", c.v, g, c.bf16)
		}
		if g := fp16Bits(c.v); g != c.fp16 {
			t.Errorf("fp16Bits(%v) = %#04x, want %#04x", c.v, g, c.fp16)
		}
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 100000; i++ {
		v := math.Float32frombits(rng.Uint32())
		if i%2 == 0 {
			v = float32(rng.NormFloat64() * math.Pow(2, float64(rng.Intn(50)-30)))
		}
		for _, c := range []struct {
			name string
			got  float32
			want float32
		}{{"bf16", bf16Value(bf16Bits(v)), nn.RoundBF16(v)}, {"fp16", fp16Value(fp16Bits(v)), nn.RoundFP16(v)}} {
			if math.Float32bits(c.got) != math.Float32bits(c.want) && !(c.got != c.got && c.want != c.want) {
				t.Fatalf("%s of %v (%#08x): %v, want %v", c.name, v, math.Float32bits(v), c.got, c.want)
			}
		}
	}
}

// TestHalfFallbackWithoutGemmEx: on a device without native p (cuBLAS
// lacking GemmEx, or an older GPU) NativePrecision is false and
// GemmPrecision, Conv2d and Conv2dBackward with geo.Precision still
// compute on operands rounded to p, with the round kernels and the float32
// GEMM.
func TestHalfFallbackWithoutGemmEx(t *testing.T) {
	f := newFakeGPU()
	fakeHalf.Lock()
	fakeHalf.off[f] = true
	fakeHalf.Unlock()
	defer func() {
		fakeHalf.Lock()
		delete(fakeHalf.off, f)
		fakeHalf.Unlock()
	}()
	b := newBackend(f, 0, "fake", false)
	defer b.Close()
	for _, p := range []nn.Precision{nn.BFloat16, nn.Float16} {
		if b.NativePrecision(p) {
			t.Errorf("NativePrecision(%v) on a device without gemmEx", p)
		}
		rng := rand.New(rand.NewSource(2))
		a, bm, c := scaled(rng, 6*5), scaled(rng, 5*7), scaled(rng, 6*7)
		want := append([]float32(nil), c...)
		nn.CPU{}.Gemm(false, false, 6, 7, 5, 1.5, rounded(p, a), 5, rounded(p, bm), 7, 0.5, want, 7)
		b.GemmPrecision(p, false, false, 6, 7, 5, 1.5, a, 5, bm, 7, 0.5, c, 7)
		if d := golden.Compare(c, want, golden.Tol{Atol: 1e-5 * (1 + maxAbsF(want)), RelL2: 1e-6}); d != "" {
			t.Errorf("GemmPrecision %v without gemmEx: %s", p, d)
		}
		geo := nn.ConvGeom{N: 2, C: 3, H: 6, W: 5, K: 4, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: 6, OW: 5}
		x, w, dy := scaled(rng, 2*3*30), scaled(rng, 4*27), scaled(rng, 2*4*30)
		ref := geo
		y, yw := make([]float32, 2*4*30), make([]float32, 2*4*30)
		nn.CPU{}.Conv2d(ref, rounded(p, x), rounded(p, w), nil, yw, nn.NewArena())
		geo.Precision = p
		b.Conv2d(geo, x, w, nil, y, nil)
		dx, dw, dxw, dww := make([]float32, len(x)), make([]float32, len(w)), make([]float32, len(x)), make([]float32, len(w))
		nn.CPU{}.Conv2dBackward(ref, rounded(p, x), rounded(p, w), rounded(p, dy), dxw, dww, nil, nn.NewArena())
		b.Conv2dBackward(geo, x, w, dy, dx, dw, nil, nil)
		for _, r := range []struct {
			name      string
			got, want []float32
		}{{"y", y, yw}, {"dx", dx, dxw}, {"dw", dw, dww}} {
			if d := golden.Compare(r.got, r.want, golden.Tol{Atol: 1e-5 * (1 + maxAbsF(r.want)), RelL2: 1e-6}); d != "" {
				t.Errorf("conv %v without gemmEx, %s: %s", p, r.name, d)
			}
		}
		if n := f.gemmExCalls(); n != 0 {
			t.Errorf("%d gemmEx calls on a device without it", n)
		}
	}
	rounds := 0
	for _, l := range f.launches {
		if l.name == "detlab_round_bf16" || l.name == "detlab_round_fp16" {
			rounds++
		}
	}
	if rounds == 0 {
		t.Error("the fallback did not round on the device")
	}
}

// TestHalfNativeLaunches checks what a native autocast convolution runs:
// the 16-bit conversion kernels and batched gemmEx calls, no float32
// im2col and no rounding kernels; and that a gemmEx failure surfaces as
// an *OpError.
func TestHalfNativeLaunches(t *testing.T) {
	f := newFakeGPU()
	b := newBackend(f, 0, "fake", false)
	defer b.Close()
	geo := nn.ConvGeom{N: 3, C: 2, H: 5, W: 5, K: 4, KH: 3, KW: 3, SH: 2, SW: 2, PH: 1, PW: 1, OH: 3, OW: 3, Precision: nn.Float16}
	rng := rand.New(rand.NewSource(3))
	x, w, dy := scaled(rng, 3*2*25), scaled(rng, 4*18), scaled(rng, 3*4*9)
	b.Conv2d(geo, x, w, nil, make([]float32, 3*4*9), nil)
	b.Conv2dBackward(geo, x, w, dy, make([]float32, len(x)), make([]float32, len(w)), nil, nil)
	count := map[string]int{}
	for _, l := range f.launches {
		count[l.name]++
	}
	// Forward: weights, one patch matrix for the 3 images. Backward: dy
	// and x as patch matrices, the weights, 3 col2im.
	want := map[string]int{"detlab_to_fp16": 2, "detlab_im2col_fp16": 3, "detlab_col2im": 3}
	for name, n := range want {
		if count[name] != n {
			t.Errorf("%d launches of %s, want %d (all: %v)", count[name], name, n, count)
		}
	}
	for _, name := range []string{"detlab_im2col", "detlab_round_fp16", "detlab_round_bf16"} {
		if count[name] != 0 {
			t.Errorf("native fp16 convolution launched %s %d times", name, count[name])
		}
	}
	if n, st := f.gemmExCalls(), b.Stats(); n != 3 || st.GEMMs != 3 {
		t.Errorf("%d gemmEx calls (%d GEMMs counted), want 3 (forward, dw, dx batched)", n, st.GEMMs)
	}
	f.fail["gemmEx"] = errors.New("fake: CUBLAS_STATUS_EXECUTION_FAILED")
	func() {
		defer func() {
			var oe *OpError
			if r := recover(); r == nil || !errors.As(r.(error), &oe) || oe.Op != "GemmPrecision" {
				t.Errorf("GemmPrecision with a failing gemmEx: recovered %v, want an *OpError", r)
			}
		}()
		b.GemmPrecision(nn.Float16, false, false, 2, 2, 2, 1, []float32{1, 2, 3, 4}, 2, []float32{1, 2, 3, 4}, 2, 0, make([]float32, 4), 2)
	}()
}

// TestHalfChunks checks halfChunk's arithmetic, then runs native
// convolutions whose images do not all fit one chunk (the budget lowered)
// against the same convolutions in one chunk.
func TestHalfChunks(t *testing.T) {
	for _, c := range []struct {
		geo      nn.ConvGeom
		perImage int
		want     int
	}{
		{nn.ConvGeom{N: 8, OH: 10, OW: 10}, 1 << 20, 8},
		{nn.ConvGeom{N: 8, OH: 10, OW: 10}, halfColBudget / 3, 3},
		{nn.ConvGeom{N: 8, OH: 10, OW: 10}, 2 * halfColBudget, 1},
		{nn.ConvGeom{N: 1, OH: 1, OW: 1}, 0, 1},
	} {
		if got := halfChunk(c.geo, c.perImage); got != c.want {
			t.Errorf("halfChunk(%+v, %d) = %d, want %d", c.geo, c.perImage, got, c.want)
		}
	}
	b := newBackend(newFakeGPU(), 0, "fake", false)
	defer b.Close()
	rng := rand.New(rand.NewSource(4))
	for _, geo := range []nn.ConvGeom{
		{N: 5, C: 3, H: 7, W: 6, K: 4, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: 7, OW: 6, Precision: nn.BFloat16},
		{N: 5, C: 3, H: 7, W: 6, K: 4, KH: 1, KW: 1, SH: 1, SW: 1, OH: 7, OW: 6, Precision: nn.Float16},
	} {
		chw, ohw := geo.C*geo.H*geo.W, geo.OH*geo.OW
		x, w, dy := scaled(rng, geo.N*chw), scaled(rng, geo.K*geo.C*geo.KH*geo.KW), scaled(rng, geo.N*geo.K*ohw)
		run := func() [][]float32 {
			y, dx, dw := make([]float32, len(dy)), make([]float32, len(x)), make([]float32, len(w))
			b.Conv2d(geo, x, w, nil, y, nil)
			b.Conv2dBackward(geo, x, w, dy, dx, dw, nil, nil)
			return [][]float32{y, dx, dw}
		}
		want := run()
		for _, budget := range []int{1, 2 * 14 * ohw * geo.C * geo.KH * geo.KW} { // 1 image, then 2 per chunk
			func() {
				saved := halfColBudget
				halfColBudget = budget
				defer func() { halfColBudget = saved }()
				got := run()
				for i, name := range []string{"y", "dx", "dw"} {
					if d := golden.Compare(got[i], want[i], golden.Tol{Atol: 1e-5 * (1 + maxAbsF(want[i])), RelL2: 1e-6}); d != "" {
						t.Errorf("%v, budget %d: %s differs from one chunk: %s", geo, budget, name, d)
					}
				}
			}()
		}
	}
}

func scaled(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func rounded(p nn.Precision, x []float32) []float32 {
	r := make([]float32, len(x))
	p.RoundSlice(r, x)
	return r
}

func maxAbsF(x []float32) float64 {
	m := 0.0
	for _, v := range x {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}
