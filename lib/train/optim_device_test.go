package train

import (
	"context"
	"math"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/data"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// deviceOptim is a CPU backend that also implements nn.OptimizerBackend (a
// loop written from the interface's doc, as lib/cuda's kernel is) and
// nn.Allocator, counting both.
type deviceOptim struct {
	nn.CPU
	steps, allocs, scales int
}

func (b *deviceOptim) SGDStep(p, g, buf []float32, lr, momentum, dampening, weightDecay float32, nesterov, first bool) {
	b.steps++
	for i := range p {
		d := g[i]
		if weightDecay != 0 {
			d += weightDecay * p[i]
		}
		if buf != nil {
			if first {
				buf[i] = d
			} else {
				buf[i] = momentum*buf[i] + (1-dampening)*d
			}
			if nesterov {
				d += momentum * buf[i]
			} else {
				d = buf[i]
			}
		}
		p[i] -= lr * d
	}
}

func (b *deviceOptim) Alloc(n int) []float32 { b.allocs++; return make([]float32, n) }

// TestSGDOnBackend checks that an SGD given a backend with
// nn.OptimizerBackend updates there, one call per parameter with a
// gradient, with momentum buffers from its allocator, and lands on the host
// update's exact bits over several steps.
func TestSGDOnBackend(t *testing.T) {
	params := func() []*nn.Param {
		rng := rand.New(rand.NewSource(3))
		var ps []*nn.Param
		for i, n := range []int{5, 300, 1} {
			p := nn.NewParam("p"+string(rune('a'+i)), n)
			for j := range p.Value.Data() {
				p.Value.Data()[j] = float32(rng.NormFloat64())
			}
			ps = append(ps, p)
		}
		ps = append(ps, nn.NewParam("no.grad", 4)) // gets no gradient: skipped
		return ps
	}
	grads := func(ps []*nn.Param, step int) {
		rng := rand.New(rand.NewSource(int64(10 + step)))
		for _, p := range ps[:3] {
			p.Grad = tensor.New(p.Value.Shape()...)
			for j := range p.Grad.Data() {
				p.Grad.Data()[j] = float32(rng.NormFloat64())
			}
		}
	}
	for _, cfg := range []SGD{
		{},
		{Momentum: 0.9, WeightDecay: 5e-4},
		{Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3, NoDecay: NormsAndBiases},
		{Momentum: 0.5, Dampening: 0.25},
	} {
		host, dev := cfg, cfg
		be := &deviceOptim{}
		dev.Backend = be
		hp, dp := params(), params()
		for step := range 3 {
			grads(hp, step)
			grads(dp, step)
			if err := host.Step(hp, 0.005); err != nil {
				t.Fatal(err)
			}
			if err := dev.Step(dp, 0.005); err != nil {
				t.Fatal(err)
			}
		}
		if be.steps != 9 {
			t.Errorf("%+v: %d device updates, want 9 (3 parameters x 3 steps)", cfg, be.steps)
		}
		if wantAllocs := map[bool]int{true: 3, false: 0}[cfg.Momentum != 0]; be.allocs != wantAllocs {
			t.Errorf("%+v: %d momentum buffers from the backend, want %d", cfg, be.allocs, wantAllocs)
		}
		for i := range hp {
			h, d := hp[i].Value.Data(), dp[i].Value.Data()
			for j := range h {
				if h[j] != d[j] {
					t.Fatalf("%+v: %s[%d] = %v on the backend, %v on the host", cfg, hp[i].Name, j, d[j], h[j])
				}
			}
		}
	}
}

// TestTrainerUsesModelBackend checks that New gives the optimizer the
// model's backend when the model reports one.
func TestTrainerUsesModelBackend(t *testing.T) {
	be := &deviceOptim{}
	tr := New(backendModel{be}, Config{LR: 0.01})
	if tr.Opt.Backend != nn.Backend(be) || tr.Scaler.Backend != nn.Backend(be) {
		t.Errorf("Opt.Backend = %v, Scaler.Backend = %v, want the model's", tr.Opt.Backend, tr.Scaler.Backend)
	}
}

type backendModel struct{ b nn.Backend }

func (m backendModel) Params() []*nn.Param                                  { return nil }
func (m backendModel) Loss(ctx context.Context, b data.Batch) (Loss, error) { return nil, nil }
func (m backendModel) Backend() nn.Backend                                  { return m.b }

func (b *deviceOptim) Scale(x []float32, s float32) {
	b.scales++
	for i := range x {
		x[i] *= s
	}
}

func (b *deviceOptim) NonFinite(x []float32) bool {
	for _, v := range x {
		if v-v != 0 {
			return true
		}
	}
	return false
}

// TestScalerOnBackend checks that Unscale runs on a backend with
// nn.ScalerBackend with the host's bits and verdict.
func TestScalerOnBackend(t *testing.T) {
	for _, bad := range []float32{0, float32(math.Inf(1)), float32(math.NaN())} {
		mk := func() []*nn.Param {
			var ps []*nn.Param
			for i, n := range []int{3, 1000} {
				p := nn.NewParam("q"+string(rune('a'+i)), n)
				p.Grad = tensor.New(n)
				for j := range p.Grad.Data() {
					p.Grad.Data()[j] = float32(j%17) * 1234.5
				}
				ps = append(ps, p)
			}
			ps[1].Grad.Data()[500] += bad
			return ps
		}
		host, dev := NewScaler(), NewScaler()
		be := &deviceOptim{}
		dev.Backend = be
		hp, dp := mk(), mk()
		hf, hn := host.Unscale(hp)
		df, dn := dev.Unscale(dp)
		if hf != df || hn != dn {
			t.Errorf("bad %v: device says (%v, %q), host (%v, %q)", bad, df, dn, hf, hn)
		}
		if be.scales != 2 {
			t.Errorf("bad %v: %d Scale calls on the backend, want 2", bad, be.scales)
		}
		for i := range hp {
			for j, v := range hp[i].Grad.Data() {
				if d := dp[i].Grad.Data()[j]; math.Float32bits(d) != math.Float32bits(v) && !(v != v && d != d) {
					t.Fatalf("bad %v: grad %d[%d] = %v on the backend, %v on the host", bad, i, j, d, v)
				}
			}
		}
	}
}
