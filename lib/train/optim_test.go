package train

import (
	"math"
	"testing"

	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

func scalarParam(name string, w, g float32) *nn.Param {
	p := nn.NewParam(name, 1)
	p.Value.Data()[0] = w
	p.Grad = tensor.New(1)
	p.Grad.Data()[0] = g
	return p
}

// TestSGDRule checks two steps of torch.optim.SGD worked by hand from
// torch's documented rule: p=1, g=0.5 at both steps, lr 0.1.
func TestSGDRule(t *testing.T) {
	cases := []struct {
		name         string
		opt          SGD
		step1, step2 float64
	}{
		{"plain", SGD{}, 0.95, 0.90},
		{"weight decay", SGD{WeightDecay: 0.1}, 0.94, 0.94 - 0.1*(0.5+0.094)},
		{"momentum+wd", SGD{Momentum: 0.9, WeightDecay: 0.1}, 0.94, 0.8266},
		{"nesterov+wd", SGD{Momentum: 0.9, WeightDecay: 0.1, Nesterov: true}, 0.886, 0.725566},
		{"dampening", SGD{Momentum: 0.9, Dampening: 0.5, WeightDecay: 0.1}, 0.94, 0.8563},
	}
	for _, c := range cases {
		opt := c.opt
		p := scalarParam("w", 1, 0.5)
		if err := opt.Step([]*nn.Param{p}, 0.1); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got1 := float64(p.Value.Data()[0])
		p.Grad.Data()[0] = 0.5
		if err := opt.Step([]*nn.Param{p}, 0.1); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got2 := float64(p.Value.Data()[0])
		if math.Abs(got1-c.step1) > 1e-6 || math.Abs(got2-c.step2) > 1e-6 {
			t.Errorf("%s: steps %.7f %.7f, want %.7f %.7f", c.name, got1, got2, c.step1, c.step2)
		}
	}
}

func TestSGDSkipsAndNoDecay(t *testing.T) {
	frozen := scalarParam("frozen.weight", 1, 1)
	frozen.Trainable = false
	noGrad := nn.NewParam("nograd.weight", 1)
	bias := scalarParam("fc.bias", 1, 0)
	bn := scalarParam("layer1.0.bn1.weight", 1, 0)
	conv := scalarParam("layer1.0.conv1.weight", 1, 0)
	opt := SGD{WeightDecay: 0.5, NoDecay: NormsAndBiases}
	if err := opt.Step([]*nn.Param{frozen, noGrad, bias, bn, conv}, 1); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p    *nn.Param
		want float32
	}{{frozen, 1}, {noGrad, 0}, {bias, 1}, {bn, 1}, {conv, 0.5}} {
		if got := c.p.Value.Data()[0]; got != c.want {
			t.Errorf("%s: %v, want %v", c.p.Name, got, c.want)
		}
	}
	for _, bad := range []SGD{{Momentum: -1}, {WeightDecay: -1}, {Nesterov: true}, {Nesterov: true, Momentum: 0.9, Dampening: 0.1}} {
		if err := bad.Step(nil, 1); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestNormsAndBiases(t *testing.T) {
	for name, want := range map[string]bool{
		"fc.bias": true, "backbone.1.weight": true, "backbone.4.0.bn1.weight": true,
		"backbone.4.0.downsample.1.weight": true, "backbone.4.0.downsample.0.weight": false,
		"backbone.0.weight": false, "roi_heads.box_head.fc6.weight": false, "bn1.weight": true,
	} {
		if got := NormsAndBiases(name); got != want {
			t.Errorf("NormsAndBiases(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestSchedules(t *testing.T) {
	cases := []struct {
		name  string
		s     Schedule
		epoch []int
		step  []int
		want  []float64
	}{
		{"StepLR(3,0.1)", StepLR(3, 0.1), []int{0, 2, 3, 5, 6}, []int{0, 0, 0, 0, 0}, []float64{1, 1, 0.1, 0.1, 0.01}},
		{"MultiStepLR", MultiStepLR([]int{4, 2}, 0.5), []int{0, 1, 2, 3, 4, 9}, make([]int, 6), []float64{1, 1, 0.5, 0.5, 0.25, 0.25}},
		{"Cosine epoch", Cosine(4, 0.1, false), []int{0, 2, 4}, []int{7, 7, 7}, []float64{1, 0.55, 0.1}},
		{"Cosine step", Cosine(10, 0, true), []int{3, 3, 3}, []int{0, 5, 10}, []float64{1, 0.5, 0}},
		// torchvision reference: LinearLR(start_factor=1/1000, total_iters=w)
		{"Warmup", Warmup(StepLR(1, 0.1), 4, 0.001), []int{0, 0, 0, 1}, []int{0, 2, 4, 9}, []float64{0.001, 0.5005, 1, 0.1}},
		{"Constant", Constant(), []int{5}, []int{100}, []float64{1}},
	}
	for _, c := range cases {
		for i := range c.want {
			if got := c.s.Factor(c.epoch[i], c.step[i]); math.Abs(got-c.want[i]) > 1e-12 {
				t.Errorf("%s at epoch %d step %d: %v, want %v", c.name, c.epoch[i], c.step[i], got, c.want[i])
			}
		}
	}
}

func TestScaler(t *testing.T) {
	s := NewScaler()
	if s.Scale != 65536 || s.GrowthFactor != 2 || s.BackoffFactor != 0.5 || s.GrowthInterval != 2000 {
		t.Fatalf("defaults %+v", s)
	}
	for i := 0; i < 1999; i++ {
		s.Update(false)
	}
	if s.Scale != 65536 {
		t.Fatalf("grew early: %v", s.Scale)
	}
	s.Update(false)
	if s.Scale != 131072 || s.GoodSteps != 0 {
		t.Fatalf("after 2000 good steps: %+v", s)
	}
	s.Update(false)
	s.Update(true)
	if s.Scale != 65536 || s.GoodSteps != 0 || s.Skipped != 1 {
		t.Fatalf("after an inf: %+v", s)
	}
	p := scalarParam("a", 0, 65536*3)
	q := scalarParam("b", 0, float32(math.Inf(1)))
	ok, first := s.Unscale([]*nn.Param{p, q})
	if ok || first != "b" || p.Grad.Data()[0] != 3 {
		t.Errorf("Unscale: ok %v first %q grad %v", ok, first, p.Grad.Data()[0])
	}
}

func TestClipGradNorm(t *testing.T) {
	a := scalarParam("a", 0, 3)
	b := scalarParam("b", 0, 4)
	ps := []*nn.Param{a, b}
	if n := ClipGradNorm(ps, 10); n != 5 || a.Grad.Data()[0] != 3 {
		t.Errorf("no clip: norm %v grad %v", n, a.Grad.Data()[0])
	}
	if n := ClipGradNorm(ps, 1); n != 5 {
		t.Errorf("norm %v", n)
	}
	// torch: coef = max_norm/(norm+1e-6)
	want := float32(3 * (1 / (5 + 1e-6)))
	if got := a.Grad.Data()[0]; math.Abs(float64(got-want)) > 1e-7 {
		t.Errorf("clipped grad %v, want %v", got, want)
	}
	if n := GlobalGradNorm(ps); math.Abs(n-1) > 1e-6 {
		t.Errorf("norm after clip %v", n)
	}
	gn := GradNorms(ps)
	if len(gn) != 2 || gn[0].Name != "a" || math.Abs(gn[1].Norm-4/(5+1e-6)) > 1e-6 {
		t.Errorf("GradNorms %+v", gn)
	}
}
