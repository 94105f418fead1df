package compute

import (
	"math"
	"math/rand"
	"runtime"
	"testing"
)

// TestSgemmPanelsPacked compares the product with a prepacked, row-scaled
// A against SgemmPanels with the scale in the epilogue (bit for bit where
// both fold the scale into A) and against a
// float64 reference, on shapes that take every path: tiny (unpacked),
// serial, split over rows, over columns and over k, partial strips.
func TestSgemmPanelsPacked(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	r := rand.New(rand.NewSource(11))
	for _, tc := range []struct {
		name    string
		m, n, k int
		res     bool
		path    string
	}{
		{"tiny", 3, 4, 5, false, "tiny"},
		{"serial partial strips", 13, 17, 40, true, "serial"},
		{"rows (layer4 downsampling)", 512, 49, 2304, true, "over C"},
		{"columns (stem)", 64, 3000, 147, false, "over C"},
		{"over k", 41, 40, 1300, true, "over k"},
		{"k=0", 5, 7, 0, true, "tiny"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, n, k := tc.m, tc.n, tc.k
			lda, ldc := k+3, n+2
			a := randSlice(r, m*lda)
			b := randSlice(r, k*n+1)
			scale, shift := randSlice(r, m), randSlice(r, m)
			ep := Epilogue{Scale: scale, Shift: shift, ReLU: true}
			if tc.res {
				ep.Residual, ep.LdResidual = randSlice(r, m*n), n
			}
			want := make([]float32, m*ldc)
			SgemmPanels(m, n, k, a, lda, matSource{b, n}, want, ldc, ep)
			p := NewPackedA(m, k, a, lda, scale)
			if p.Rows() != m || p.Cols() != k || p.Bytes() < int64(m*k*4) {
				t.Fatalf("Rows, Cols, Bytes = %d, %d, %d", p.Rows(), p.Cols(), p.Bytes())
			}
			got := make([]float32, m*ldc)
			pep := ep
			pep.Scale = nil
			SgemmPanelsPacked(p, n, matSource{b, n}, got, ldc, pep)
			workers := gemmWorkers(m, n, k)
			path := "over C"
			switch {
			case k == 0 || m*n*k < 512:
				path = "tiny"
			case workers == 1:
				path = "serial"
			case splitOverK(m, n, k, workers):
				path = "over k"
			}
			if path != tc.path {
				t.Fatalf("takes the %s path, want %s", path, tc.path)
			}
			// Tiny products and split-k apply SgemmPanels' scale after the
			// sum, so they agree to rounding only.
			exact := goBackendKernel() != nil && m*n*k >= 512 && !(workers > 1 && splitOverK(m, n, k, workers))
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					ref := float64(shift[i])
					for q := 0; q < k; q++ {
						ref += float64(scale[i]) * float64(a[i*lda+q]) * float64(b[q*n+j])
					}
					if tc.res {
						ref += float64(ep.Residual[i*n+j])
					}
					ref = max(ref, 0)
					g := got[i*ldc+j]
					if exact && math.Float32bits(g) != math.Float32bits(want[i*ldc+j]) {
						t.Fatalf("C[%d,%d] = %v, SgemmPanels %v", i, j, g, want[i*ldc+j])
					}
					if math.Abs(float64(g)-ref) > 1e-4*(1+math.Abs(ref)) {
						t.Fatalf("C[%d,%d] = %v, want %v", i, j, g, ref)
					}
				}
			}
			// The scaled matrix p unpacks to, which the native-library
			// path multiplies.
			mat := p.matrix()
			for i := 0; i < m; i++ {
				for q := 0; q < k; q++ {
					if w := scale[i] * a[i*lda+q]; mat[i*k+q] != w {
						t.Fatalf("matrix[%d,%d] = %v, want %v", i, q, mat[i*k+q], w)
					}
				}
			}
		})
	}
}

// TestSgemmPanelsPackedPanics checks the misuse SgemmPanelsPacked and
// NewPackedA reject.
func TestSgemmPanelsPackedPanics(t *testing.T) {
	p := NewPackedA(2, 3, make([]float32, 6), 3, nil)
	for name, f := range map[string]func(){
		"scale in ep": func() {
			SgemmPanelsPacked(p, 2, matSource{make([]float32, 6), 2}, make([]float32, 4), 2, Epilogue{Scale: []float32{1, 1}})
		},
		"short c":     func() { SgemmPanelsPacked(p, 2, matSource{make([]float32, 6), 2}, make([]float32, 3), 2, Epilogue{}) },
		"negative n":  func() { SgemmPanelsPacked(p, -1, nil, nil, 1, Epilogue{}) },
		"short scale": func() { NewPackedA(2, 3, make([]float32, 6), 3, []float32{1}) },
		"short a":     func() { NewPackedA(2, 3, make([]float32, 5), 3, nil) },
		"negative m":  func() { NewPackedA(-1, 3, nil, 3, nil) },
		"short residual": func() {
			SgemmPanelsPacked(p, 2, matSource{make([]float32, 6), 2}, make([]float32, 4), 2, Epilogue{Residual: make([]float32, 3), LdResidual: 2})
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}
