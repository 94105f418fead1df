package train

import (
	"testing"

	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// TestSGDStepMarksChanged: a step writes the parameters, so their versions
// must move (cached derived weights, nn.WeightCache, are keyed by them);
// parameters it skips keep theirs.
func TestSGDStepMarksChanged(t *testing.T) {
	for _, mom := range []float64{0, 0.9} {
		p := nn.NewParam("w", 3)
		p.Grad = tensor.MustFromSlice([]float32{1, 2, 3}, 3)
		frozen := nn.NewParam("f", 2)
		frozen.Trainable = false
		noGrad := nn.NewParam("g", 2)
		before := []uint64{p.Version(), frozen.Version(), noGrad.Version()}
		o := &SGD{Momentum: mom}
		if err := o.Step([]*nn.Param{p, frozen, noGrad}, 0.1); err != nil {
			t.Fatal(err)
		}
		if p.Version() == before[0] {
			t.Errorf("momentum %v: updated parameter kept version %d", mom, before[0])
		}
		if frozen.Version() != before[1] || noGrad.Version() != before[2] {
			t.Errorf("momentum %v: skipped parameters changed version", mom)
		}
	}
}
