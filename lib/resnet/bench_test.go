package resnet

import (
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

func benchInput(n, h, w int) *tensor.Tensor {
	rng := rand.New(rand.NewSource(1))
	x := tensor.New(n, 3, h, w)
	for i := range x.Data() {
		x.Data()[i] = float32(rng.NormFloat64())
	}
	return x
}

// BenchmarkResNet18Forward224 is the eval forward at 224x224, batch 1
// (PyTorch 1.13 on the same 2 cores: 47.9-53.5 ms).
func BenchmarkResNet18Forward224(b *testing.B) {
	b.Logf("backend: %s", nn.CurrentBackend().Name())
	m, err := New18(1000, rand.New(rand.NewSource(0)))
	if err != nil {
		b.Fatal(err)
	}
	x := benchInput(1, 224, 224)
	arena := nn.NewArena()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		g := nn.NewInferenceGraph().WithArena(arena)
		if _, err := m.Forward(g, g.Input(x)); err != nil {
			b.Fatal(err)
		}
		g.Release()
	}
}

// BenchmarkResNet18TrainStep224 is one training step (train-mode forward,
// sum loss, backward, gradients zeroed) at 224x224, batch 2.
func BenchmarkResNet18TrainStep224(b *testing.B) {
	m, err := New18(1000, rand.New(rand.NewSource(0)))
	if err != nil {
		b.Fatal(err)
	}
	m.SetTraining(true)
	x := benchInput(2, 224, 224)
	params := m.Params()
	arena := nn.NewArena()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		nn.ZeroGrads(params)
		g := nn.NewGraph().WithArena(arena)
		y, err := m.Forward(g, g.Input(x))
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Backward(nn.Mean(g, y)); err != nil {
			b.Fatal(err)
		}
		g.Release()
	}
}
