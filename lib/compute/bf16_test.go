package compute

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"testing"
)

// goBF16Kernel4x8 is a portable kernel over the same packed pair layout as
// the assembly one, so the blocking and packing are tested on every CPU.
func goBF16Kernel4x8(kq int, a, b []uint32, c []float32, ldc int, alpha float32, rs, qs int) {
	const mr, nr = 4, 8
	var acc [mr * nr]float32
	for q := 0; q < kq; q++ {
		for i := 0; i < mr; i++ {
			av := a[i*rs+q*qs]
			a0 := math.Float32frombits(av << 16)
			a1 := math.Float32frombits(av &^ 0xffff)
			for j := 0; j < nr; j++ {
				bv := b[q*nr+j]
				acc[i*nr+j] += a0*math.Float32frombits(bv<<16) + a1*math.Float32frombits(bv&^0xffff)
			}
		}
	}
	for i := 0; i < mr; i++ {
		for j := 0; j < nr; j++ {
			c[i*ldc+j] += alpha * acc[i*nr+j]
		}
	}
}

var goBF16Kernel = &bf16MicroKernel{name: "go test kernel 4x8", mr: 4, nr: 8, fn: goBF16Kernel4x8}

// bf16Kernels lists the kernels to test: the portable one and, where the
// CPU runs it, the native one.
func bf16Kernels() []*bf16MicroKernel {
	ks := []*bf16MicroKernel{goBF16Kernel}
	if bf16Native != nil {
		ks = append(ks, bf16Native)
	}
	return ks
}

func roundBF16Ref(v float32) float64 { return float64(math.Float32frombits(bf16Bits(v) << 16)) }

// checkBF16Gemm compares c (the result of a bfloat16 GEMM on c0) with a
// float64 product of the bfloat16-rounded operands.
//
// Tolerance: every product of two bfloat16 values (8 significant bits each)
// is exact in float32, so only the float32 additions round: at most k+1
// additions into an accumulator or C, one alpha multiply and one beta
// scaling, each with relative error 2^-24. The standard bound for
// recursive summation gives |got-want| <= (k+4) 2^-24 (|alpha| sum_p
// |a_ip b_pj| + |beta c_ij|) to first order; we allow twice that. A wrong
// pairing, a dropped or doubled k, or a bad rounding of the operands breaks
// it by orders of magnitude.
func checkBF16Gemm(t *testing.T, name string, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c0, c []float32, ldc int) {
	t.Helper()
	bad := 0
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, sa float64
			for p := 0; p < k; p++ {
				av, bv := opAt(a, lda, transA, i, p), opAt(b, ldb, transB, p, j)
				pr := roundBF16Ref(av) * roundBF16Ref(bv)
				s += pr
				sa += math.Abs(pr)
			}
			want := float64(alpha) * s
			mag := math.Abs(float64(alpha)) * sa
			if beta != 0 {
				want += float64(beta) * float64(c0[i*ldc+j])
				mag += math.Abs(float64(beta) * float64(c0[i*ldc+j]))
			}
			tol := 2*float64(k+4)*math.Ldexp(mag, -24) + 1e-30
			got := float64(c[i*ldc+j])
			if math.Abs(got-want) > tol || got != got {
				if bad < 5 {
					t.Errorf("%s: c[%d,%d] = %g, want %g (tol %.3g)", name, i, j, got, want, tol)
				}
				bad++
			}
		}
	}
	// Columns past n inside the leading dimension must be untouched.
	for i := 0; i < m; i++ {
		for j := n; j < ldc && i*ldc+j < len(c); j++ {
			if c[i*ldc+j] != c0[i*ldc+j] {
				t.Fatalf("%s: c[%d,%d] outside the n=%d columns changed", name, i, j, n)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements out of tolerance", name, bad, m*n)
	}
}

func bf16Rand(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

type bf16Case struct {
	m, n, k        int
	transA, transB bool
	alpha, beta    float32
}

func bf16Cases() []bf16Case {
	var cs []bf16Case
	for _, m := range []int{1, 7, 33} {
		for _, n := range []int{1, 7, 33} {
			for _, k := range []int{1, 7, 33} {
				for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
					cs = append(cs, bf16Case{m, n, k, tr[0], tr[1], 1, 0})
				}
			}
		}
	}
	cs = append(cs,
		bf16Case{13, 40, 2, false, false, 1, 1},
		bf16Case{12, 32, 64, false, false, 0.5, 1},
		bf16Case{12, 32, 64, true, true, -2, 0.25},
		bf16Case{25, 70, kcBF16 + 1, false, false, 1, 1},   // odd k across a k block
		bf16Case{150, 530, 515, false, true, 1, 0},         // n past ncBF16, parallel rows
		bf16Case{40, 600, 300, true, false, 1.5, 1},        // parallel over columns
		bf16Case{48, 48, 4*kcBF16 + 1, false, false, 1, 1}, // split k, odd
		bf16Case{48, 48, 4 * kcBF16, true, true, 1, 0},     // split k, transposed
		bf16Case{1600, 33, 80, false, false, 1, 0.5},       // m past mpBF16, parallel rows
		bf16Case{9, 9, 0, false, false, 1, 0.5},            // k = 0: C = beta*C
		bf16Case{9, 9, 5, false, false, 0, 2},              // alpha = 0
	)
	return cs
}

func TestSgemmBF16(t *testing.T) {
	// The cases must reach each parallel path where there are two cores.
	if runtime.GOMAXPROCS(0) >= 2 {
		split, rows, cols := 0, 0, 0
		for _, tc := range bf16Cases() {
			switch w, sk := bf16Plan(tc.m, tc.n, tc.k); {
			case w > 1 && sk:
				split++
			case w > 1 && tc.m >= tc.n:
				rows++
			case w > 1:
				cols++
			}
		}
		if split < 2 || rows < 1 || cols < 1 {
			t.Fatalf("cases cover split-k %d, row-parallel %d, column-parallel %d times: adjust them to the block sizes", split, rows, cols)
		}
	}
	rng := rand.New(rand.NewSource(1))
	for _, tc := range bf16Cases() {
		ar, ac := tc.m, tc.k
		if tc.transA {
			ar, ac = tc.k, tc.m
		}
		br, bc := tc.k, tc.n
		if tc.transB {
			br, bc = tc.n, tc.k
		}
		lda, ldb, ldc := ac+1, bc+3, tc.n+2
		a := bf16Rand(rng, max(ar*lda, 1))
		b := bf16Rand(rng, max(br*ldb, 1))
		c0 := bf16Rand(rng, tc.m*ldc)
		if tc.beta == 0 {
			for i := range c0 {
				if i%ldc < tc.n {
					c0[i] = float32(math.NaN()) // beta 0 must ignore C
				}
			}
		}
		run := func(name string, f func(c []float32)) {
			c := append([]float32(nil), c0...)
			f(c)
			checkBF16Gemm(t, name, tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c0, c, ldc)
		}
		id := fmt.Sprintf("m=%d n=%d k=%d tA=%v tB=%v alpha=%g beta=%g", tc.m, tc.n, tc.k, tc.transA, tc.transB, tc.alpha, tc.beta)
		run("SgemmBF16 "+id, func(c []float32) {
			SgemmBF16(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
		})
		run("emulated "+id, func(c []float32) {
			sgemmBF16Emulated(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
		})
		for _, kern := range bf16Kernels() {
			run(kern.name+" "+id, func(c []float32) {
				sgemmBF16Kernel(kern, tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
			})
			if bf16RowPairs32 == nil && bf16CvtPairsN == nil && bf16ColPairs12 == nil {
				continue
			}
			// The Go packing loops, as on a CPU without the converters.
			rp, cp, cp12 := bf16RowPairs32, bf16CvtPairsN, bf16ColPairs12
			bf16RowPairs32, bf16CvtPairsN, bf16ColPairs12 = nil, nil, nil
			run(kern.name+" Go packing "+id, func(c []float32) {
				sgemmBF16Kernel(kern, tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
			})
			bf16RowPairs32, bf16CvtPairsN, bf16ColPairs12 = rp, cp, cp12
		}
	}
}

func TestBF16Bits(t *testing.T) {
	inf := float32(math.Inf(1))
	cases := []struct {
		in   float32
		want uint32
	}{
		{1, 0x3f80},
		{-2.5, 0xc020},
		{1 + 1.0/256, 0x3f80},             // tie: even
		{1 + 3.0/256, 0x3f82},             // tie: even, upwards
		{1 + 1.0/256 + 1.0/65536, 0x3f81}, // above the tie
		{math.MaxFloat32, 0x7f80},         // overflows to +Inf
		{inf, 0x7f80},
		{-inf, 0xff80},
		{0, 0},
		{float32(math.Copysign(0, -1)), 0x8000},
	}
	for _, c := range cases {
		if got := bf16Bits(c.in); got != c.want {
			t.Errorf("bf16Bits(%g) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	nan := math.Float32frombits(0x7f800001) // payload only in the low bits
	if got := math.Float32frombits(bf16Bits(nan) << 16); got == got {
		t.Errorf("bf16Bits(NaN) = %#04x, not a NaN", bf16Bits(nan))
	}
}

func TestSgemmBF16NaNPropagates(t *testing.T) {
	a := []float32{1, float32(math.NaN()), 3, 4}
	b := []float32{1, 0, 0, 1}
	c := make([]float32, 4)
	SgemmBF16(false, false, 2, 2, 2, 1, a, 2, b, 2, 0, c, 2)
	if c[0] == c[0] || c[1] == c[1] {
		t.Errorf("row with NaN: %v, want NaN", c[:2])
	}
	if c[2] != 3 || c[3] != 4 {
		t.Errorf("row without NaN: %v, want [3 4]", c[2:])
	}
}

func TestSgemmBF16Panics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("SgemmBF16 with a short A did not panic")
		}
	}()
	SgemmBF16(false, false, 2, 2, 2, 1, make([]float32, 3), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2)
}

func TestBF16Backend(t *testing.T) {
	s := BF16Backend()
	if HasBF16() != (bf16Native != nil && s[:6] == "native") {
		t.Errorf("HasBF16() = %v but BF16Backend() = %q", HasBF16(), s)
	}
	t.Log(CPU(), "|", s)
}

func benchGemm(bm *testing.B, f func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int), m, n, k int) {
	rng := rand.New(rand.NewSource(1))
	a, b, c := bf16Rand(rng, m*k), bf16Rand(rng, k*n), make([]float32, m*n)
	bm.SetBytes(0)
	bm.ReportAllocs()
	bm.ResetTimer()
	for i := 0; i < bm.N; i++ {
		f(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
	}
	bm.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(bm.N)/bm.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkSgemmBF16 compares the bfloat16 GEMM with Sgemm on the 3x3
// convolutions of ResNet18 at 224x224 and a square product.
func BenchmarkSgemmBF16(bm *testing.B) {
	// ResNet18 at 224, batch 1 (K x OH*OW x C*KH*KW): conv1, layer1..4.
	for _, s := range [][3]int{{64, 12544, 147}, {64, 3136, 576}, {128, 784, 1152}, {256, 196, 2304}, {512, 49, 4608}, {512, 512, 512}} {
		name := fmt.Sprintf("%dx%dx%d", s[0], s[1], s[2])
		bm.Run("bf16/"+name, func(bm *testing.B) { benchGemm(bm, SgemmBF16, s[0], s[1], s[2]) })
		bm.Run("fp32/"+name, func(bm *testing.B) { benchGemm(bm, Sgemm, s[0], s[1], s[2]) })
	}
}

// bf16Specials are values whose rounding is easy to get wrong: ties to
// even, values just above a tie, overflow to Inf, Inf, NaN, signed zero,
// float32 subnormals.
func bf16Specials() []float32 {
	return []float32{
		1 + 1.0/256, 1 + 3.0/256, -(1 + 1.0/256), 1 + 1.0/256 + 1.0/65536,
		math.MaxFloat32, -math.MaxFloat32, float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), float32(math.Copysign(0, -1)), 0, 3.3895314e38,
		1e-39, -1e-39, 1.5e-45, 1.1754944e-38, 2.5, -7.75, 65504, 1e-20,
	}
}

// TestBF16Converters checks that the assembly converters give the Go
// rounding's bits on special and random values (NaN: any NaN; subnormals:
// a zero of their sign).
func TestBF16Converters(t *testing.T) {
	if bf16CvtPairsN == nil || bf16RowPairs32 == nil || bf16ColPairs12 == nil {
		t.Skip("no AVX512_BF16 converters on this CPU (" + CPU().String() + ")")
	}
	rng := rand.New(rand.NewSource(3))
	src := bf16Rand(rng, 4*64)
	sp := bf16Specials()
	for i := range src {
		if i%3 == 0 {
			src[i] = sp[(i/3)%len(sp)]
		}
	}
	// VCVTNE2PS2BF16 flushes subnormal inputs to zero of the same sign;
	// VDPBF16PS would treat them as zero anyway.
	same := func(got, want uint32) bool {
		isNaN := func(h uint32) bool { return h&0x7f80 == 0x7f80 && h&0x7f != 0 }
		flushed := want&0x7f80 == 0 && got == want&0x8000
		return got == want || isNaN(got) && isNaN(want) || flushed
	}
	pairOK := func(got, want uint32) bool { return same(got&0xffff, want&0xffff) && same(got>>16, want>>16) }
	got := make([]uint32, len(src)/2)
	bf16CvtPairsN(got, src, len(got))
	for q := range got {
		if want := bf16Pair(src[2*q], src[2*q+1]); !pairOK(got[q], want) {
			t.Errorf("cvtPairs: pair %d of (%g, %g) = %#08x, want %#08x", q, src[2*q], src[2*q+1], got[q], want)
		}
	}
	const ld, kq = 40, 3
	cols := make([]uint32, 12*kq)
	bf16ColPairs12(cols, src[5:], ld, kq)
	for q := 0; q < kq; q++ {
		for i := 0; i < 12; i++ {
			lo, hi := src[5+2*q*ld+i], src[5+(2*q+1)*ld+i]
			if want := bf16Pair(lo, hi); !pairOK(cols[q*12+i], want) {
				t.Errorf("colPairs12: [%d,%d] of (%g, %g) = %#08x, want %#08x", q, i, lo, hi, cols[q*12+i], want)
			}
		}
	}
	rows := make([]uint32, 32*kq)
	bf16RowPairs32(rows, src, ld, kq)
	for q := 0; q < kq; q++ {
		for j := 0; j < 32; j++ {
			lo, hi := src[2*q*ld+j], src[(2*q+1)*ld+j]
			if want := bf16Pair(lo, hi); !pairOK(rows[q*32+j], want) {
				t.Errorf("rowPairs32: [%d,%d] of (%g, %g) = %#08x, want %#08x", q, j, lo, hi, rows[q*32+j], want)
			}
		}
	}
}

func TestRoundBF16Slice(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for _, n := range []int{0, 1, 15, 16, 17, 100, 1000} {
		src := bf16Rand(rng, n)
		sp := bf16Specials()
		for i := range src {
			if i%2 == 0 {
				src[i] = sp[(i/2)%len(sp)]
			}
			if i%7 == 3 { // random bit patterns: every exponent, NaN payloads
				src[i] = math.Float32frombits(rng.Uint32())
			}
		}
		for _, alias := range []bool{false, true} {
			dst := make([]float32, n)
			in := append([]float32(nil), src...)
			if alias {
				dst = in
			}
			RoundBF16Slice(dst, in)
			for i, v := range src {
				want := bf16Bits(v) << 16
				if got := math.Float32bits(dst[i]); got != want {
					t.Fatalf("n=%d alias=%v: RoundBF16Slice(%#08x) = %#08x, want %#08x", n, alias, math.Float32bits(v), got, want)
				}
			}
		}
	}
}
