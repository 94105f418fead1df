package compute

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
	"unsafe"
)

// refEpilogue is the float64 reference of SgemmEpilogue.
func refEpilogue(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, ep Epilogue) []float64 {
	out := refSgemm(transA, transB, m, n, k, 1, a, lda, b, ldb, 0, nil, n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			v := out[i*n+j]
			if ep.Scale != nil {
				v *= float64(ep.Scale[i])
			}
			if ep.Shift != nil {
				v += float64(ep.Shift[i])
			}
			if ep.Residual != nil {
				v += float64(ep.Residual[i*ep.LdResidual+j])
			}
			if ep.ReLU && v < 0 {
				v = 0
			}
			out[i*n+j] = v
		}
	}
	return out
}

type epCase struct {
	m, n, k                 int
	scale, shift, res, relu bool
	pad                     int
}

var epCases = []epCase{
	{1, 1, 1, true, true, true, true, 0},
	{3, 5, 7, true, false, false, true, 1},
	{12, 32, 40, true, true, true, true, 0},    // exactly one full tile
	{64, 49, 576, true, true, false, true, 0},  // several k slices, edge columns
	{24, 64, 300, false, true, true, false, 3}, // full tiles, two k slices
	{130, 97, 259, true, true, true, true, 2},
	{37, 300, 70, true, false, true, false, 0}, // column split between workers
	{1549, 45, 300, true, true, true, true, 1}, // more rows than one packed A panel
	{33, 31, 2100, true, true, true, true, 0},  // split over k
	{5, 4, 0, true, true, true, true, 0},       // k = 0: the epilogue alone
	{0, 4, 3, true, true, true, true, 0},
}

func checkEpilogueAgainstRef(t *testing.T, f func(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue)) {
	t.Helper()
	r := rand.New(rand.NewSource(3))
	for _, tc := range epCases {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			transA, transB := tr[0], tr[1]
			name := fmt.Sprintf("m%d_n%d_k%d_tA%v_tB%v_s%v_t%v_r%v_relu%v", tc.m, tc.n, tc.k, transA, transB, tc.scale, tc.shift, tc.res, tc.relu)
			t.Run(name, func(t *testing.T) {
				ar, br, lda, ldb, ldc := operandLayout(tc.m, tc.n, tc.k, tc.pad, transA, transB)
				a := randSlice(r, ar*lda)
				b := randSlice(r, br*ldb)
				c := randSlice(r, tc.m*ldc)
				for i := range c {
					if i%ldc < tc.n {
						c[i] = float32(math.NaN()) // overwritten, never read
					}
				}
				ep := Epilogue{ReLU: tc.relu}
				if tc.scale {
					ep.Scale = randSlice(r, tc.m)
				}
				if tc.shift {
					ep.Shift = randSlice(r, tc.m)
				}
				if tc.res {
					ep.LdResidual = tc.n + 2*tc.pad
					ep.Residual = randSlice(r, tc.m*ep.LdResidual)
				}
				want := refEpilogue(transA, transB, tc.m, tc.n, tc.k, a, lda, b, ldb, ep)
				orig := append([]float32(nil), c...)
				f(transA, transB, tc.m, tc.n, tc.k, a, lda, b, ldb, c, ldc, ep)
				for i := 0; i < tc.m; i++ {
					for j := 0; j < ldc; j++ {
						got := c[i*ldc+j]
						if j >= tc.n {
							if math.Float32bits(got) != math.Float32bits(orig[i*ldc+j]) {
								t.Fatalf("padding C[%d,%d] changed: %v -> %v", i, j, orig[i*ldc+j], got)
							}
							continue
						}
						w := want[i*tc.n+j]
						tol := 1e-5 * (1 + float64(tc.k)) * (1 + math.Abs(w))
						if d := math.Abs(float64(got) - w); !(d <= tol) {
							t.Fatalf("C[%d,%d] = %v, want %v (diff %g > %g)", i, j, got, w, d, tol)
						}
						if tc.relu && got < 0 {
							t.Fatalf("C[%d,%d] = %v after ReLU", i, j, got)
						}
					}
				}
			})
		}
	}
}

func TestSgemmEpilogue(t *testing.T) {
	checkEpilogueAgainstRef(t, SgemmEpilogue)
}

// TestSgemmEpilogueKernels runs the Go implementation with every kernel
// (fused store or not) and the second-pass fallback native libraries use.
func TestSgemmEpilogueKernels(t *testing.T) {
	for _, kern := range append([]*microKernel{goKernel}, asmKernels...) {
		t.Run(kern.name, func(t *testing.T) {
			checkEpilogueAgainstRef(t, func(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
				if m == 0 || n == 0 {
					return
				}
				sgemmKernelEp(kern, transA, transB, m, n, k, a, lda, b, ldb, nil, c, ldc, &ep)
			})
		})
	}
	t.Run("second pass", func(t *testing.T) {
		checkEpilogueAgainstRef(t, func(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
			Sgemm(transA, transB, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
			applyEpilogue(0, m, n, c, ldc, &ep, true)
		})
	})
}

// TestSgemmEpilogueNaN checks that ReLU passes NaN on (as torch's relu
// does) in the fused store, the Go edge-tile path and the second pass.
func TestSgemmEpilogueNaN(t *testing.T) {
	for _, n := range []int{32, 33} { // a full tile; plus an edge column
		m, k := 24, 8
		a := make([]float32, m*k)
		b := make([]float32, k*n)
		for i := range a {
			a[i] = -1
		}
		for i := range b {
			b[i] = 1
		}
		shift := make([]float32, m)
		shift[5] = float32(math.NaN())
		c := make([]float32, m*n)
		SgemmEpilogue(false, false, m, n, k, a, k, b, n, c, n, Epilogue{Shift: shift, ReLU: true})
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				v := c[i*n+j]
				if i == 5 {
					if v == v {
						t.Fatalf("n=%d: C[5,%d] = %v, want NaN", n, j, v)
					}
				} else if v != 0 {
					t.Fatalf("n=%d: C[%d,%d] = %v, want 0", n, i, j, v)
				}
			}
		}
	}
}

func TestSgemmEpilogueBadArgs(t *testing.T) {
	a, b, c := make([]float32, 6), make([]float32, 6), make([]float32, 4)
	for _, tc := range []struct {
		name string
		ep   Epilogue
	}{
		{"short scale", Epilogue{Scale: make([]float32, 1)}},
		{"short shift", Epilogue{Shift: make([]float32, 1)}},
		{"short residual", Epilogue{Residual: make([]float32, 3), LdResidual: 2}},
		{"small residual ld", Epilogue{Residual: make([]float32, 4), LdResidual: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			SgemmEpilogue(false, false, 2, 2, 3, a, 3, b, 2, c, 2, tc.ep)
		})
	}
}

// TestPackStrip12 compares the assembly strip packer with the Go loop on
// widths with and without a tail and with per-row scales.
func TestPackStrip12(t *testing.T) {
	if packStrip12 == nil {
		t.Skip("no AVX-512 strip packer on this CPU")
	}
	r := rand.New(rand.NewSource(4))
	for _, kb := range []int{8, 9, 15, 64, 147, 256} {
		for _, scaled := range []bool{false, true} {
			m, lda := 25, kb+3
			a := randSlice(r, m*lda)
			var scale []float32
			if scaled {
				scale = randSlice(r, m)
			}
			got := make([]float32, 36*kb)
			want := make([]float32, 36*kb)
			packA(got, 12, false, a, lda, 0, m, 1, kb-1, 1.5, scale, new([16]float32))
			saved := packStrip12
			packStrip12 = nil
			packA(want, 12, false, a, lda, 0, m, 1, kb-1, 1.5, scale, new([16]float32))
			packStrip12 = saved
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("kb=%d scaled=%v: packed[%d] = %v, want %v", kb, scaled, i, got[i], want[i])
				}
			}
		}
	}
}

// matSource is a PanelSource over a row-major matrix.
type matSource struct {
	b   []float32
	ldb int
}

func (s matSource) PackPanel(dst []float32, nr, p0, kb, j0, nb int) {
	packB(dst, nr, false, s.b, s.ldb, p0, kb, j0, nb)
}

// TestSgemmPanels runs the epilogue cases with B supplied as panels: the
// Go implementation with every kernel (split over k included, where the
// source is shifted) and the path native libraries take (B written out).
func TestSgemmPanels(t *testing.T) {
	type variant struct {
		name string
		run  func(m, n, k int, a []float32, lda int, src PanelSource, c []float32, ldc int, ep Epilogue)
	}
	vs := []variant{{"SgemmPanels", SgemmPanels}}
	for _, kern := range append([]*microKernel{goKernel}, asmKernels...) {
		vs = append(vs, variant{kern.name, func(m, n, k int, a []float32, lda int, src PanelSource, c []float32, ldc int, ep Epilogue) {
			sgemmKernelEp(kern, false, false, m, n, k, a, lda, nil, 0, src, c, ldc, &ep)
		}})
	}
	vs = append(vs, variant{"materialized", func(m, n, k int, a []float32, lda int, src PanelSource, c []float32, ldc int, ep Epilogue) {
		b := materialize(src, k, n)
		defer b.release()
		Sgemm(false, false, m, n, k, 1, a, lda, b.b, max(n, 1), 0, c, ldc)
		applyEpilogue(0, m, n, c, ldc, &ep, true)
	}})
	for _, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			checkEpilogueAgainstRef(t, func(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
				if transA || transB {
					// Only op(A) = A, B from panels: compare with the
					// plain epilogue product instead.
					SgemmEpilogue(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, ep)
					return
				}
				if m == 0 || n == 0 {
					return
				}
				v.run(m, n, k, a, lda, matSource{b, ldb}, c, ldc, ep)
			})
		})
	}
}

// TestPackStripBT32 compares the assembly transposed-B packer with the Go
// loop, tails and partial strips included.
func TestPackStripBT32(t *testing.T) {
	if packStripBT32 == nil {
		t.Skip("no AVX-512 transposed-B packer on this CPU")
	}
	r := rand.New(rand.NewSource(5))
	for _, kb := range []int{8, 9, 17, 64, 255} {
		for _, nb := range []int{32, 64, 70} {
			ldb := kb + 5
			b := randSlice(r, (nb+2)*ldb)
			strips := (nb + 31) / 32
			got := make([]float32, strips*32*kb)
			want := make([]float32, strips*32*kb)
			packB(got, 32, true, b, ldb, 2, kb-2, 1, nb)
			saved := packStripBT32
			packStripBT32 = nil
			packB(want, 32, true, b, ldb, 2, kb-2, 1, nb)
			packStripBT32 = saved
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("kb=%d nb=%d: packed[%d] = %v, want %v", kb, nb, i, got[i], want[i])
				}
			}
		}
	}
}

// TestKernEpLayout pins the field offsets the fused-store assembly reads.
func TestKernEpLayout(t *testing.T) {
	var e kernEp
	got := []uintptr{unsafe.Offsetof(e.load), unsafe.Offsetof(e.shift), unsafe.Offsetof(e.res), unsafe.Offsetof(e.ldr), unsafe.Offsetof(e.floor)}
	want := []uintptr{0, 8, 16, 24, 32}
	for i := range want {
		if unsafe.Sizeof(uintptr(0)) == 8 && got[i] != want[i] {
			t.Fatalf("kernEp field %d at offset %d, the assembly reads %d", i, got[i], want[i])
		}
	}
}
