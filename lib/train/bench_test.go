package train

import (
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/resnet"
)

// resnet18Params returns torchvision resnet18's parameters (11.7M values)
// with random gradients.
func resnet18Params(b *testing.B) []*nn.Param {
	rng := rand.New(rand.NewSource(1))
	m, err := resnet.New18(1000, rng)
	if err != nil {
		b.Fatal(err)
	}
	ps := m.Params()
	for _, p := range ps {
		p.Grad = p.Value.Clone()
		nn.Normal(p.Grad, 0, 1e-3, rng)
	}
	return ps
}

// BenchmarkSGDStepResNet18 times one optimizer step (momentum, Nesterov,
// weight decay with no decay for norms and biases) over ResNet18's
// parameters.
func BenchmarkSGDStepResNet18(b *testing.B) {
	ps := resnet18Params(b)
	n := 0
	for _, p := range ps {
		n += p.Value.Len()
	}
	opt := &SGD{Momentum: 0.9, Nesterov: true, WeightDecay: 5e-4, NoDecay: NormsAndBiases}
	b.ReportMetric(float64(n), "params")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := opt.Step(ps, 0.01); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnscaleClipResNet18 times the AMP bookkeeping of a step:
// unscale with the Inf/NaN check, then the global-norm clip.
func BenchmarkUnscaleClipResNet18(b *testing.B) {
	ps := resnet18Params(b)
	s := NewScaler()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Scale = 1 // keep the gradients' magnitude
		s.Unscale(ps)
		ClipGradNorm(ps, 1e9)
	}
}
