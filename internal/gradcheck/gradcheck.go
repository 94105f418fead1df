// Package gradcheck gives tests a central-difference check of analytic
// gradients, shared by the loss tests of several lib packages.
package gradcheck

import (
	"math"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/tensor"
)

// FillNormal fills each tensor in turn with N(0,1) draws from rng, in
// row-major order.
func FillNormal(rng *rand.Rand, ts ...*tensor.Tensor) {
	for _, tt := range ts {
		d := tt.Data()
		for i := range d {
			d[i] = float32(rng.NormFloat64())
		}
	}
}

// Central perturbs every element of x by ±eps (in float32, in place, restored
// afterwards), evaluates loss at both points and reports an error naming the
// element when the central difference (loss(+eps)-loss(-eps))/(2 eps) differs
// from grad by more than tol. loss must read x afresh on every call.
func Central(t testing.TB, name string, x, grad *tensor.Tensor, eps, tol float64, loss func() float64) {
	t.Helper()
	xd, gd := x.Data(), grad.Data()
	if len(xd) != len(gd) {
		t.Fatalf("gradcheck: %s has %d values but its gradient %d", name, len(xd), len(gd))
	}
	for i := range xd {
		old := xd[i]
		xd[i] = old + float32(eps)
		fp := loss()
		xd[i] = old - float32(eps)
		fm := loss()
		xd[i] = old
		num := (fp - fm) / (2 * eps)
		if d := math.Abs(num - float64(gd[i])); d > tol {
			t.Errorf("%s[%d]: analytic %v, numeric %v", name, i, gd[i], num)
		}
	}
}
