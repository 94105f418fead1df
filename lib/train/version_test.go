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

// TestCheckpointLoadMarksChanged: restoring a checkpoint writes the model's
// parameters, so their versions must move.
func TestCheckpointLoadMarksChanged(t *testing.T) {
	path := t.TempDir() + "/ckpt.safetensors"
	src := New(newLinModel(toySize, 1), Config{})
	if err := src.Save(path); err != nil {
		t.Fatal(err)
	}
	m := newLinModel(toySize, 2)
	dst := New(m, Config{})
	before := []uint64{m.w.Version(), m.b.Version()}
	if err := dst.Load(path); err != nil {
		t.Fatal(err)
	}
	if m.w.Version() == before[0] || m.b.Version() == before[1] {
		t.Errorf("versions %d %d after Load, before %v", m.w.Version(), m.b.Version(), before)
	}
}
