package roialign

import (
	"math"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

func applyUnder(t *testing.T, p nn.Precision, feat *tensor.Tensor, rois *tensor.Tensor, gy *tensor.Tensor) (out, grad []float32) {
	t.Helper()
	g := nn.NewGraph().WithAutocast(p)
	f := g.Leaf(feat, true)
	o, err := Apply(g, f, rois, Defaults(1.0/8))
	if err != nil {
		t.Fatal(err)
	}
	prod, err := nn.Mul(g, o, g.Input(gy))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Backward(nn.Sum(g, prod)); err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), o.Value.Data()...), append([]float32(nil), f.Grad.Data()...)
}

// TestApplyAutocast checks RoIAlign under bfloat16 autocast: the output is
// a convex combination of features rounded with relative error at most
// 2^-8, and the gradient a scatter of output gradients rounded likewise,
// so both stay within 2^-8 relative L2 of float32 (and are not equal to
// it: the rounding is applied).
func TestApplyAutocast(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	s := Shape{N: 2, C: 3, H: 10, W: 12}
	feat := tensor.MustFromSlice(randData(r, s.numel()), s.N, s.C, s.H, s.W)
	rois := tensor.MustFromSlice(randRois(r, 6, s.N, 80, 96), 6, 5)
	gy := tensor.MustFromSlice(randData(r, 6*s.C*49), 6, s.C, 7, 7)
	o32, g32 := applyUnder(t, nn.Float32, feat, rois, gy)
	o16, g16 := applyUnder(t, nn.BFloat16, feat, rois, gy)
	for _, c := range []struct {
		name      string
		got, want []float32
	}{{"output", o16, o32}, {"grad", g16, g32}} {
		var num, den float64
		for i := range c.got {
			d := float64(c.got[i] - c.want[i])
			num += d * d
			den += float64(c.want[i]) * float64(c.want[i])
		}
		e := math.Sqrt(num / den)
		if e == 0 || e > 1.0/256 {
			t.Errorf("bfloat16 %s: relative L2 error %.3g, want in (0, 2^-8]", c.name, e)
		}
	}
}
