package gradcheck

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/tensor"
)

// recorder counts the failures Central reports.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestCentral(t *testing.T) {
	x := tensor.New(3)
	FillNormal(rand.New(rand.NewSource(1)), x)
	orig := x.Clone()
	// loss = sum x^2, gradient 2x.
	loss := func() float64 {
		var s float64
		for _, v := range x.Data() {
			s += float64(v) * float64(v)
		}
		return s
	}
	right := tensor.New(3)
	wrong := tensor.New(3)
	for i, v := range x.Data() {
		right.Data()[i] = 2 * v
		wrong.Data()[i] = 2 * v
	}
	wrong.Data()[1] += 0.5
	cases := []struct {
		name  string
		grad  *tensor.Tensor
		fails int
	}{
		{"right gradient", right, 0},
		{"one wrong element", wrong, 1},
	}
	for _, c := range cases {
		r := &recorder{TB: t}
		Central(r, c.name, x, c.grad, 1e-2, 2e-3, loss)
		if len(r.errs) != c.fails {
			t.Errorf("%s: %d failures %v, want %d", c.name, len(r.errs), r.errs, c.fails)
		}
		for i := range x.Data() {
			if x.Data()[i] != orig.Data()[i] {
				t.Fatalf("%s: x[%d] not restored", c.name, i)
			}
		}
	}
}

func TestFillNormalOrder(t *testing.T) {
	a, b := tensor.New(2), tensor.New(3)
	FillNormal(rand.New(rand.NewSource(4)), a, b)
	rng := rand.New(rand.NewSource(4))
	for i, v := range append(append([]float32(nil), a.Data()...), b.Data()...) {
		if w := float32(rng.NormFloat64()); v != w {
			t.Errorf("value %d = %v, want %v", i, v, w)
		}
	}
}
