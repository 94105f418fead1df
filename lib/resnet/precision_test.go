package resnet

import (
	"math"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/nn"
)

// f64Backend is the CPU backend with every matrix product accumulated in
// float64: a reference for how much float32 accumulation moves a result.
type f64Backend struct{ nn.CPU }

// Gemm accumulates op(A)*op(B) in float64 and rounds once.
func (f64Backend) Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	A := make([]float64, m*k)
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			if transA {
				A[i*k+p] = float64(a[p*lda+i])
			} else {
				A[i*k+p] = float64(a[i*lda+p])
			}
		}
	}
	B := make([]float64, k*n)
	for p := 0; p < k; p++ {
		for j := 0; j < n; j++ {
			if transB {
				B[p*n+j] = float64(b[j*ldb+p])
			} else {
				B[p*n+j] = float64(b[p*ldb+j])
			}
		}
	}
	row := make([]float64, n)
	for i := 0; i < m; i++ {
		clear(row)
		for p := 0; p < k; p++ {
			av := A[i*k+p]
			if av == 0 {
				continue
			}
			bp := B[p*n : (p+1)*n]
			for j, bv := range bp {
				row[j] += av * bv
			}
		}
		for j := 0; j < n; j++ {
			v := float64(alpha) * row[j]
			if beta != 0 {
				v += float64(beta) * float64(c[i*ldc+j])
			}
			c[i*ldc+j] = float32(v)
		}
	}
}

// trainGrad returns the first 32 rows of d(sum(logits*g))/d(conv1.weight)
// in train mode, computed on be.
func trainGrad(t *testing.T, be nn.Backend) []float32 {
	io := golden.Load(t, "resnet18_io.safetensors")
	m := loadedModel(t)
	m.SetTraining(true)
	x := golden.Entry(t, io, "x").Tensor()
	gup := golden.Entry(t, io, "train.g").Tensor()
	g := nn.NewGraph().WithBackend(be)
	logits, err := m.Forward(g, g.Input(x))
	if err != nil {
		t.Fatal(err)
	}
	prod, err := nn.Mul(g, logits, g.Input(gup))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Backward(nn.Sum(g, prod)); err != nil {
		t.Fatal(err)
	}
	return m.Conv1.Weight.Grad.Data()[:32*147]
}

// relDiff returns the relative L2 and the max absolute difference of a from b.
func relDiff(a, b []float32) (float64, float64) {
	var num, den, mx float64
	for i := range b {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
		mx = math.Max(mx, math.Abs(d))
	}
	return math.Sqrt(num / den), mx
}

// TestConv1GradientHasNoFloat32Drift is the check DESIGN.md's "gradients of
// early layers drifted in float32" asks for: the train-mode conv1 gradient
// computed with float32 GEMM accumulation must agree with the same
// computation accumulated in float64 far more closely than the golden
// tolerance. (Measured: rel-L2 ~1e-6 between the two, while both differ
// from torch's float32 reference by rel-L2 0.0038, max 0.23 -- the size of
// torch's own float32-vs-float64 difference stated in the README.)
func TestConv1GradientHasNoFloat32Drift(t *testing.T) {
	if testing.Short() {
		t.Skip("float64-accumulated ResNet18 train step takes seconds")
	}
	io := golden.Load(t, "resnet18_io.safetensors")
	want := golden.Entry(t, io, "train.grad.conv1.weight").F32Data
	g32 := trainGrad(t, nn.CPU{})
	g64 := trainGrad(t, f64Backend{})
	r, m := relDiff(g32, g64)
	t.Logf("float32 vs float64 accumulation: rel-L2 %.3g, max %.3g", r, m)
	if r > 1e-4 {
		t.Errorf("conv1 gradient moves by rel-L2 %.3g when GEMMs accumulate in float64: float32 drift", r)
	}
	r, m = relDiff(g64, want[:len(g64)])
	t.Logf("float64-accumulated vs torch float32 reference: rel-L2 %.3g, max %.3g", r, m)
}
