package cuda_test

import (
	"context"
	"math"
	"testing"

	"github.com/detlab/detlab/lib/cuda"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/train"
)

// TestAccumulationOnFakeDevice trains the small convolutional net with
// lib/train's gradient accumulation on the lazy fake device: batches of 2
// accumulated twice must give the parameters of batches of 4 (on the
// device) and of the same accumulation on nn.CPU, with momentum, weight
// decay and clipping. The tolerance, 2e-5 absolute on parameters of order
// 0.1-1 over 8 steps, covers the different summation orders (per
// micro-batch sums then their sum, device GEMMs vs the CPU's); a lost or
// doubled micro-batch, or a step taken before the queued backward
// finished, moves them by far more.
func TestAccumulationOnFakeDevice(t *testing.T) {
	ds := newToyData(16, 8, 4)
	fit := func(be nn.Backend, batch, accum int) [][]float32 {
		m := newConvNet(t, be, 8)
		tr := train.New(m, train.Config{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4, ClipNorm: 5,
			BatchSize: batch, AccumSteps: accum, Seed: 2, Sequential: true})
		if _, err := tr.Fit(context.Background(), ds, 2); err != nil {
			t.Fatal(err)
		}
		if err := nn.Sync(be); err != nil {
			t.Fatal(err)
		}
		var ps [][]float32
		for _, p := range m.Params() {
			ps = append(ps, append([]float32(nil), p.Value.Data()...))
		}
		return ps
	}
	maxDiff := func(a, b [][]float32) float64 {
		d := 0.0
		for i := range a {
			for j := range a[i] {
				d = math.Max(d, math.Abs(float64(a[i][j]-b[i][j])))
			}
		}
		return d
	}
	var init [][]float32
	for _, p := range newConvNet(t, nn.CPU{}, 8).Params() {
		init = append(init, append([]float32(nil), p.Value.Data()...))
	}
	dev := cuda.NewFakeBackend(true)
	defer dev.Close()
	before := dev.Stats()
	accumDev := fit(dev, 2, 2)
	if dev.Stats().GEMMs == before.GEMMs {
		t.Fatal("training ran no GEMM on the fake device")
	}
	if d := maxDiff(accumDev, init); d < 1e-3 {
		t.Fatalf("training moved the parameters by only %g", d)
	}
	for _, c := range []struct {
		name string
		want [][]float32
	}{
		{"device, batches of 4", fit(dev, 4, 1)},
		{"CPU, batches of 2 x 2", fit(nn.CPU{}, 2, 2)},
	} {
		moved := maxDiff(accumDev, c.want)
		t.Logf("vs %s: %g", c.name, moved)
		if moved > 2e-5 {
			t.Errorf("accumulated on the device vs %s: parameters differ by up to %g", c.name, moved)
		}
	}
	if err := dev.Err(); err != nil {
		t.Error(err)
	}
}
