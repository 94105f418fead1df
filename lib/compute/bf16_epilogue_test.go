package compute

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"testing"
)

// bf16EpCases are epCases plus products that reach the bfloat16 GEMM's
// parallel paths (rows, columns, split k) and its odd-k tails.
var bf16EpCases = append(append([]epCase(nil), epCases...),
	epCase{150, 530, 515, true, true, true, true, 1},        // odd k across a k block, rows in parallel
	epCase{40, 600, 300, true, true, false, true, 0},        // columns in parallel
	epCase{48, 48, 4*kcBF16 + 1, true, true, true, true, 2}, // split k, odd
	epCase{64, 196, 576, true, true, true, true, 0},         // a ResNet layer's shape
)

// checkBF16Epilogue compares f's result with a float64 product of the
// bfloat16-rounded operands followed by the epilogue.
//
// Tolerance: products of bfloat16 values are exact in float32, so only the
// float32 additions of the k products (plus the store's scale, shift and
// residual: three more operations) round, each with relative error 2^-24:
// |got-want| <= (k+4) 2^-24 (|scale| sum_p |a_ip b_pj| + |shift| + |res|)
// to first order; we allow twice that. A wrong rounding of an operand
// (2^-9 relative), a skipped or doubled k slice, a scale applied twice or
// folded into the rounded A break it by orders of magnitude.
func checkBF16Epilogue(t *testing.T, f func(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue)) {
	t.Helper()
	r := rand.New(rand.NewSource(5))
	for _, tc := range bf16EpCases {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			transA, transB := tr[0], tr[1]
			name := fmt.Sprintf("m%d_n%d_k%d_tA%v_tB%v_s%v_t%v_r%v_relu%v", tc.m, tc.n, tc.k, transA, transB, tc.scale, tc.shift, tc.res, tc.relu)
			t.Run(name, func(t *testing.T) {
				ar, br, lda, ldb, ldc := operandLayout(tc.m, tc.n, tc.k, tc.pad, transA, transB)
				a := bf16Rand(r, max(ar*lda, 1))
				b := bf16Rand(r, max(br*ldb, 1))
				c := bf16Rand(r, max(tc.m*ldc, 1))
				for i := range c {
					if i%ldc < tc.n {
						c[i] = float32(math.NaN()) // overwritten, never read
					}
				}
				ep := Epilogue{ReLU: tc.relu}
				if tc.scale {
					ep.Scale = bf16Rand(r, tc.m)
				}
				if tc.shift {
					ep.Shift = bf16Rand(r, tc.m)
				}
				if tc.res {
					ep.LdResidual = tc.n + 2*tc.pad
					ep.Residual = bf16Rand(r, tc.m*ep.LdResidual)
				}
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
						var sum, mag float64
						for p := 0; p < tc.k; p++ {
							av, bv := opAt(a, lda, transA, i, p), opAt(b, ldb, transB, p, j)
							x := roundBF16Ref(av) * roundBF16Ref(bv)
							sum += x
							mag += math.Abs(x)
						}
						s, sh, res := 1.0, 0.0, 0.0
						if ep.Scale != nil {
							s = float64(ep.Scale[i])
						}
						if ep.Shift != nil {
							sh = float64(ep.Shift[i])
						}
						if ep.Residual != nil {
							res = float64(ep.Residual[i*ep.LdResidual+j])
						}
						want := s*sum + sh + res
						if tc.relu && want < 0 {
							want = 0
						}
						tol := 2 * float64(tc.k+4) / (1 << 24) * (math.Abs(s)*mag + math.Abs(sh) + math.Abs(res))
						if d := math.Abs(float64(got) - want); !(d <= tol) {
							t.Fatalf("C[%d,%d] = %v, want %v (diff %g > %g)", i, j, got, want, d, tol)
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

// TestSgemmBF16Epilogue runs the cases through the exported functions, each
// bfloat16 kernel (with operands given as matrices and, untransposed, as
// panels) and the Go packing loops.
func TestSgemmBF16Epilogue(t *testing.T) {
	if runtime.GOMAXPROCS(0) >= 2 {
		split, par := 0, 0
		for _, tc := range bf16EpCases {
			switch w, sk := bf16Plan(tc.m, tc.n, tc.k); {
			case w > 1 && sk:
				split++
			case w > 1:
				par++
			}
		}
		if split < 1 || par < 2 {
			t.Fatalf("cases reach split-k %d and C-parallel %d times: adjust them to the block sizes", split, par)
		}
	}
	type gemmEp = func(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue)
	panels := func(run func(m, n, k int, a []float32, lda int, src PanelSource, c []float32, ldc int, ep Epilogue)) gemmEp {
		return func(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
			if transA || transB {
				SgemmBF16Epilogue(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, ep)
				return
			}
			run(m, n, k, a, lda, matSource{b, ldb}, c, ldc, ep)
		}
	}
	variants := []struct {
		name string
		f    gemmEp
	}{
		{"SgemmBF16Epilogue", SgemmBF16Epilogue},
		{"SgemmBF16Panels", panels(SgemmBF16Panels)},
	}
	for _, kern := range bf16Kernels() {
		variants = append(variants,
			struct {
				name string
				f    gemmEp
			}{kern.name, func(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
				if m > 0 && n > 0 {
					sgemmBF16KernelEp(kern, transA, transB, m, n, k, a, lda, nil, b, ldb, nil, c, ldc, &ep)
				}
			}},
			struct {
				name string
				f    gemmEp
			}{kern.name + " panels", panels(func(m, n, k int, a []float32, lda int, src PanelSource, c []float32, ldc int, ep Epilogue) {
				if m > 0 && n > 0 {
					sgemmBF16KernelEp(kern, false, false, m, n, k, a, lda, nil, nil, 0, src, c, ldc, &ep)
				}
			})})
	}
	// A converted once (BF16Matrix), B as a matrix or panels.
	for _, kern := range bf16Kernels() {
		variants = append(variants, struct {
			name string
			f    gemmEp
		}{kern.name + " converted A", func(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
			if transA || m == 0 || n == 0 {
				SgemmBF16Epilogue(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, ep)
				return
			}
			pa := convertBF16A(m, k, a, lda)
			defer putBF16Pairs(pa.pairs)
			if transB {
				sgemmBF16KernelEp(kern, false, true, m, n, k, nil, 0, &pa, b, ldb, nil, c, ldc, &ep)
				return
			}
			sgemmBF16KernelEp(kern, false, false, m, n, k, nil, 0, &pa, nil, 0, matSource{b, ldb}, c, ldc, &ep)
		}})
	}
	variants = append(variants, struct {
		name string
		f    gemmEp
	}{"BF16Matrix", func(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, ep Epilogue) {
		if transA || transB {
			SgemmBF16Epilogue(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, ep)
			return
		}
		w := NewBF16Matrix(m, k, a, lda)
		defer w.Release()
		if n%2 == 0 {
			w.Gemm(n, b, ldb, c, ldc, ep)
		} else {
			w.Panels(n, matSource{b, ldb}, c, ldc, ep)
		}
	}})
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) { checkBF16Epilogue(t, v.f) })
	}
	if bf16RowPairs32 != nil || bf16EpRows32N != nil {
		// The Go packing and epilogue loops, as on a CPU without them.
		rp, er := bf16RowPairs32, bf16EpRows32N
		bf16RowPairs32, bf16EpRows32N = nil, nil
		defer func() { bf16RowPairs32, bf16EpRows32N = rp, er }()
		t.Run("Go packing and store", func(t *testing.T) { checkBF16Epilogue(t, panels(SgemmBF16Panels)) })
	}
}

// TestSgemmBF16EpilogueNaN: a NaN product or residual survives the ReLU.
func TestSgemmBF16EpilogueNaN(t *testing.T) {
	const m, n, k = 13, 35, 9
	nan := float32(math.NaN())
	for _, at := range []string{"a", "residual"} {
		a, b := make([]float32, m*k), make([]float32, k*n)
		for i := range a {
			a[i] = 1
		}
		res := make([]float32, m*n)
		if at == "a" {
			a[5*k+2] = nan
		} else {
			res[5*n+7] = nan
		}
		c := make([]float32, m*n)
		SgemmBF16Panels(m, n, k, a, k, matSource{b, n}, c, n, Epilogue{Residual: res, LdResidual: n, ReLU: true})
		if v := c[5*n+7]; v == v {
			t.Errorf("NaN in %s: C[5,7] = %v, want NaN", at, v)
		}
		if v := c[6*n+7]; v != 0 {
			t.Errorf("NaN in %s: C[6,7] = %v, want 0", at, v)
		}
	}
}

// TestSgemmBF16EpilogueBadArgs: inconsistent arguments panic with a
// message naming the problem.
func TestSgemmBF16EpilogueBadArgs(t *testing.T) {
	a, b, c := make([]float32, 12), make([]float32, 12), make([]float32, 9)
	cases := []struct {
		name string
		f    func()
	}{
		{"short scale", func() {
			SgemmBF16Epilogue(false, false, 3, 3, 4, a, 4, b, 3, c, 3, Epilogue{Scale: make([]float32, 2)})
		}},
		{"short residual", func() {
			SgemmBF16Epilogue(false, false, 3, 3, 4, a, 4, b, 3, c, 3, Epilogue{Residual: make([]float32, 5), LdResidual: 3})
		}},
		{"short a", func() { SgemmBF16Panels(3, 3, 5, a, 5, matSource{b, 3}, c, 3, Epilogue{}) }},
		{"negative k", func() { SgemmBF16Panels(3, 3, -1, a, 4, matSource{b, 3}, c, 3, Epilogue{}) }},
		{"BF16Matrix short a", func() { NewBF16Matrix(3, 5, a, 5) }},
		{"BF16Matrix short c", func() { NewBF16Matrix(3, 4, a, 4).Gemm(3, b, 3, c[:5], 3, Epilogue{}) }},
		{"BF16Matrix after Release", func() {
			w := NewBF16Matrix(3, 4, a, 4)
			w.Release()
			w.Gemm(3, b, 3, c, 3, Epilogue{})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil {
					t.Fatal("no panic")
				}
			}()
			tc.f()
		})
	}
}
