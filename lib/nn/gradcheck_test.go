package nn

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/tensor"
)

// randTensor returns N(0,1) values; with gap > 0 every value is at least
// gap away from zero and from every other value (no kinks within a
// finite-difference step for ReLU and max pooling).
func randTensor(rng *rand.Rand, gap float64, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	d := t.Data()
	if gap == 0 {
		for i := range d {
			d[i] = float32(rng.NormFloat64())
		}
		return t
	}
	perm := rng.Perm(len(d))
	for i, p := range perm {
		v := (float64(p) - float64(len(d))/2 + 0.25) * gap
		d[i] = float32(v)
	}
	return t
}

// fdCase is one finite-difference gradient check: build runs the op on the
// inputs (wrapped as Vars by the checker) and returns its output.
type fdCase struct {
	name   string
	inputs []*tensor.Tensor
	params []*Param
	build  func(g *Graph, in []*Var) (*Var, error)
	eps    float64
}

// lossOf returns sum(out * w) in float64 for a forward on an inference
// graph.
func lossOf(t *testing.T, c fdCase, w []float32) float64 {
	g := NewInferenceGraph()
	in := make([]*Var, len(c.inputs))
	for i, x := range c.inputs {
		in[i] = g.Input(x)
	}
	out, err := c.build(g, in)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	var s float64
	for i, v := range out.Value.Data() {
		s += float64(v) * float64(w[i])
	}
	return s
}

func checkGrad(t *testing.T, c fdCase) {
	t.Helper()
	rng := rand.New(rand.NewSource(7))
	g := NewGraph()
	in := make([]*Var, len(c.inputs))
	for i, x := range c.inputs {
		in[i] = g.Leaf(x, true)
	}
	ZeroGrads(c.params)
	out, err := c.build(g, in)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	w := randTensor(rng, 0, out.Shape()...)
	prod, err := Mul(g, out, g.Input(w))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Backward(Sum(g, prod)); err != nil {
		t.Fatalf("%s: backward: %v", c.name, err)
	}
	type target struct {
		name string
		val  *tensor.Tensor
		grad *tensor.Tensor
	}
	var targets []target
	for i, v := range in {
		targets = append(targets, target{fmt.Sprintf("input%d", i), c.inputs[i], v.Grad})
	}
	for _, p := range c.params {
		targets = append(targets, target{p.Name, p.Value, p.Grad})
	}
	eps := c.eps
	if eps == 0 {
		eps = 1e-2
	}
	for _, tg := range targets {
		if tg.grad == nil {
			t.Errorf("%s: no gradient for %s", c.name, tg.name)
			continue
		}
		d := tg.val.Data()
		n := len(d)
		checks := min(n, 24)
		for k := 0; k < checks; k++ {
			i := k
			if n > checks {
				i = rng.Intn(n)
			}
			orig := d[i]
			d[i] = orig + float32(eps)
			lp := lossOf(t, c, w.Data())
			d[i] = orig - float32(eps)
			lm := lossOf(t, c, w.Data())
			d[i] = orig
			num := (lp - lm) / (2 * eps)
			ana := float64(tg.grad.Data()[i])
			if math.Abs(num-ana) > 2e-3+2e-2*math.Abs(num) {
				t.Errorf("%s: d/d %s[%d]: analytic %.6g, numeric %.6g", c.name, tg.name, i, ana, num)
			}
		}
	}
}

func TestGradientsFiniteDifference(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	conv, _ := NewConv2d("conv", 3, 4, 3, 2, 1, true, rng)
	conv1x1, _ := NewConv2d("pw", 3, 5, 1, 1, 0, false, rng)
	bnTrain, _ := NewBatchNorm2d("bnt", 3)
	bnTrain.Mode = BNTrain
	bnEval, _ := NewBatchNorm2d("bne", 3)
	bnFrozen, _ := NewBatchNorm2d("bnf", 3)
	for _, bn := range []*BatchNorm2d{bnTrain, bnEval, bnFrozen} {
		Uniform(bn.Weight.Value, 0.5, 1.5, rng)
		Uniform(bn.Bias.Value, -0.5, 0.5, rng)
		Uniform(bn.RunningMean, -0.3, 0.3, rng)
		Uniform(bn.RunningVar, 0.5, 2, rng)
	}
	bnFrozen.SetMode(BNFrozen)
	lin, _ := NewLinear("fc", 6, 4, true, rng)
	labels := []int{2, 0, 3}
	targets := []float32{1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1}
	rng2 := rand.New(rand.NewSource(2))
	conv3s1, _ := NewConv2d("c3", 2, 3, 3, 1, 1, true, rng2)
	conv5s1, _ := NewConv2d("c5", 2, 2, 5, 1, 2, false, rng2) // wider than the 3x3 input
	cases := []fdCase{
		{name: "conv3x3s1", inputs: []*tensor.Tensor{randTensor(rng2, 0, 2, 2, 5, 6)}, params: conv3s1.Params(),
			build: func(g *Graph, in []*Var) (*Var, error) { return conv3s1.Forward(g, in[0]) }},
		{name: "conv5x5s1p2", inputs: []*tensor.Tensor{randTensor(rng2, 0, 1, 2, 3, 3)}, params: conv5s1.Params(),
			build: func(g *Graph, in []*Var) (*Var, error) { return conv5s1.Forward(g, in[0]) }},
		{name: "conv3x3s2", inputs: []*tensor.Tensor{randTensor(rng, 0, 2, 3, 6, 5)}, params: conv.Params(),
			build: func(g *Graph, in []*Var) (*Var, error) { return conv.Forward(g, in[0]) }},
		{name: "conv1x1", inputs: []*tensor.Tensor{randTensor(rng, 0, 2, 3, 4, 4)}, params: conv1x1.Params(),
			build: func(g *Graph, in []*Var) (*Var, error) { return conv1x1.Forward(g, in[0]) }},
		{name: "bn-train", inputs: []*tensor.Tensor{randTensor(rng, 0, 2, 3, 3, 3)}, params: bnTrain.Params(),
			build: func(g *Graph, in []*Var) (*Var, error) { return bnTrain.Forward(g, in[0]) }, eps: 3e-3},
		{name: "bn-train-relu", inputs: []*tensor.Tensor{randTensor(rng, 0.05, 2, 3, 3, 3)}, params: bnTrain.Params(),
			build: func(g *Graph, in []*Var) (*Var, error) { return bnTrain.ForwardReLU(g, in[0]) }, eps: 1e-3},
		{name: "bn-eval", inputs: []*tensor.Tensor{randTensor(rng, 0, 2, 3, 3, 3)}, params: bnEval.Params(),
			build: func(g *Graph, in []*Var) (*Var, error) { return bnEval.Forward(g, in[0]) }},
		{name: "bn-frozen-relu", inputs: []*tensor.Tensor{randTensor(rng, 0.05, 2, 3, 3, 3)},
			build: func(g *Graph, in []*Var) (*Var, error) { return bnFrozen.ForwardReLU(g, in[0]) }, eps: 1e-3},
		{name: "relu", inputs: []*tensor.Tensor{randTensor(rng, 0.05, 3, 7)},
			build: func(g *Graph, in []*Var) (*Var, error) { return ReLU(g, in[0]), nil }, eps: 1e-3},
		{name: "maxpool", inputs: []*tensor.Tensor{randTensor(rng, 0.05, 2, 2, 7, 6)},
			build: func(g *Graph, in []*Var) (*Var, error) { return MaxPool2d{3, 2, 1}.Forward(g, in[0]) }},
		{name: "avgpool+flatten", inputs: []*tensor.Tensor{randTensor(rng, 0, 2, 3, 4, 5)},
			build: func(g *Graph, in []*Var) (*Var, error) {
				p, err := AdaptiveAvgPool2d1{}.Forward(g, in[0])
				if err != nil {
					return nil, err
				}
				return Flatten{}.Forward(g, p)
			}},
		{name: "linear", inputs: []*tensor.Tensor{randTensor(rng, 0, 3, 6)}, params: lin.Params(),
			build: func(g *Graph, in []*Var) (*Var, error) { return lin.Forward(g, in[0]) }},
		{name: "add", inputs: []*tensor.Tensor{randTensor(rng, 0, 4, 3), randTensor(rng, 0, 4, 3)},
			build: func(g *Graph, in []*Var) (*Var, error) { return Add(g, in[0], in[1]) }},
		{name: "addrelu", inputs: []*tensor.Tensor{randTensor(rng, 0.1, 4, 3), randTensor(rng, 0.001, 4, 3)},
			build: func(g *Graph, in []*Var) (*Var, error) { return AddReLU(g, in[0], in[1]) }, eps: 1e-3},
		{name: "mul", inputs: []*tensor.Tensor{randTensor(rng, 0, 4, 3), randTensor(rng, 0, 4, 3)},
			build: func(g *Graph, in []*Var) (*Var, error) { return Mul(g, in[0], in[1]) }},
		{name: "mulscalar", inputs: []*tensor.Tensor{randTensor(rng, 0, 5)},
			build: func(g *Graph, in []*Var) (*Var, error) { return MulScalar(g, in[0], -1.5), nil }},
		{name: "sum", inputs: []*tensor.Tensor{randTensor(rng, 0, 2, 5)},
			build: func(g *Graph, in []*Var) (*Var, error) { return Sum(g, in[0]), nil }},
		{name: "mean", inputs: []*tensor.Tensor{randTensor(rng, 0, 2, 5)},
			build: func(g *Graph, in []*Var) (*Var, error) { return Mean(g, in[0]), nil }},
		{name: "reshape", inputs: []*tensor.Tensor{randTensor(rng, 0, 2, 6)},
			build: func(g *Graph, in []*Var) (*Var, error) { return Reshape(g, in[0], 3, -1) }},
		{name: "permute-nhwc", inputs: []*tensor.Tensor{randTensor(rng, 0, 2, 3, 2, 4)},
			build: func(g *Graph, in []*Var) (*Var, error) { return Permute(g, in[0], 0, 2, 3, 1) }},
		{name: "permute-3d", inputs: []*tensor.Tensor{randTensor(rng, 0, 2, 3, 4)},
			build: func(g *Graph, in []*Var) (*Var, error) { return Permute(g, in[0], 2, 0, 1) }},
		{name: "concat", inputs: []*tensor.Tensor{randTensor(rng, 0, 2, 3), randTensor(rng, 0, 1, 3)},
			build: func(g *Graph, in []*Var) (*Var, error) { return Concat(g, in[0], in[1], in[0]) }},
		{name: "sigmoid", inputs: []*tensor.Tensor{randTensor(rng, 0, 7)},
			build: func(g *Graph, in []*Var) (*Var, error) { return Sigmoid(g, in[0]), nil }},
		{name: "indexselect", inputs: []*tensor.Tensor{randTensor(rng, 0, 5, 3)},
			build: func(g *Graph, in []*Var) (*Var, error) { return IndexSelect(g, in[0], []int{4, 1, 4, 0}) }},
		{name: "bce", inputs: []*tensor.Tensor{randTensor(rng, 0, 3, 4)},
			build: func(g *Graph, in []*Var) (*Var, error) {
				return BCEWithLogits(g, in[0], targets, []int{0, 2, 5, 7, 11})
			}},
		{name: "smoothl1", inputs: []*tensor.Tensor{randTensor(rng, 0.03, 4, 4)},
			build: func(g *Graph, in []*Var) (*Var, error) {
				return SmoothL1(g, in[0], tensor.New(4, 4), []int{0, 3}, 1.0/9)
			}, eps: 1e-3},
		{name: "crossentropy", inputs: []*tensor.Tensor{randTensor(rng, 0, 3, 5)},
			build: func(g *Graph, in []*Var) (*Var, error) { return CrossEntropy(g, in[0], labels) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkGrad(t, c) })
	}
}
