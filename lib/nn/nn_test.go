package nn

import (
	"errors"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/tensor"
)

func TestOutputShapes(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	conv, _ := NewConv2d("c", 3, 8, 7, 2, 3, false, rng)
	bn, _ := NewBatchNorm2d("bn", 8)
	lin, _ := NewLinear("fc", 512, 10, true, rng)
	cases := []struct {
		name    string
		layer   interface{ OutputShape([]int) ([]int, error) }
		in      []int
		want    []int
		wantErr string
	}{
		{"conv stem", conv, []int{2, 3, 224, 224}, []int{2, 8, 112, 112}, ""},
		{"conv odd", conv, []int{1, 3, 33, 50}, []int{1, 8, 17, 25}, ""},
		{"conv channels", conv, []int{1, 4, 32, 32}, nil, "4 channels, want 3"},
		{"conv rank", conv, []int{3, 32, 32}, nil, "NCHW"},
		{"conv empty", conv, []int{1, 3, 0, 32}, nil, "empty"},
		{"conv zero batch", conv, []int{0, 3, 8, 8}, nil, "empty"},
		{"bn", bn, []int{2, 8, 5, 5}, []int{2, 8, 5, 5}, ""},
		{"bn channels", bn, []int{2, 7, 5, 5}, nil, "7 channels"},
		{"maxpool", MaxPool2d{3, 2, 1}, []int{2, 64, 112, 112}, []int{2, 64, 56, 56}, ""},
		{"maxpool odd", MaxPool2d{3, 2, 1}, []int{1, 1, 7, 5}, []int{1, 1, 4, 3}, ""},
		{"maxpool empty", MaxPool2d{3, 2, 1}, []int{1, 1, 0, 5}, nil, "empty"},
		{"avgpool", AdaptiveAvgPool2d1{}, []int{2, 512, 7, 7}, []int{2, 512, 1, 1}, ""},
		{"flatten", Flatten{}, []int{2, 512, 1, 1}, []int{2, 512}, ""},
		{"linear", lin, []int{2, 512}, []int{2, 10}, ""},
		{"linear features", lin, []int{2, 500}, nil, "500 features"},
	}
	for _, c := range cases {
		got, err := c.layer.OutputShape(c.in)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: error %v, want one containing %q", c.name, err, c.wantErr)
			}
			continue
		}
		if err != nil || !tensor.SameShape(got, c.want) {
			t.Errorf("%s: OutputShape(%v) = %v, %v; want %v", c.name, c.in, got, err, c.want)
		}
	}
}

func TestForwardMatchesOutputShapeAndRejectsBadInput(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	conv, _ := NewConv2d("c", 2, 3, 3, 1, 1, true, rng)
	g := NewInferenceGraph()
	y, err := conv.Forward(g, g.Input(tensor.New(1, 2, 5, 4)))
	if err != nil || !tensor.SameShape(y.Shape(), []int{1, 3, 5, 4}) {
		t.Fatalf("conv forward: %v %v", y, err)
	}
	if _, err := conv.Forward(g, g.Input(tensor.New(1, 3, 5, 4))); err == nil {
		t.Error("conv accepted 3 channels for a 2-channel layer")
	}
	bn, _ := NewBatchNorm2d("bn", 2)
	bn.SetMode(BNTrain)
	if _, err := bn.Forward(g, g.Input(tensor.New(1, 2, 1, 1))); err == nil || !strings.Contains(err.Error(), "more than one value") {
		t.Errorf("train BN on one value per channel: %v", err)
	}
	if _, err := Add(g, g.Input(tensor.New(2, 3)), g.Input(tensor.New(3, 2))); err == nil {
		t.Error("Add accepted mismatched shapes")
	}
	if _, err := IndexSelect(g, g.Input(tensor.New(2, 3)), []int{2}); err == nil {
		t.Error("IndexSelect accepted an out-of-range row")
	}
	if _, err := CrossEntropy(g, g.Input(tensor.New(2, 3)), []int{0, 3}); err == nil {
		t.Error("CrossEntropy accepted label 3 of 3 classes")
	}
	if _, err := BCEWithLogits(g, g.Input(tensor.New(4)), []float32{1, 0}, nil); err == nil {
		t.Error("BCEWithLogits accepted 2 targets for 4 logits")
	}
	if _, err := SmoothL1(g, g.Input(tensor.New(2, 4)), tensor.New(2, 3), nil, 1); err == nil {
		t.Error("SmoothL1 accepted mismatched shapes")
	}
	if _, err := NewConv2d("bad", 0, 3, 3, 1, 1, false, rng); err == nil {
		t.Error("NewConv2d accepted 0 input channels")
	}
}

func TestNaNPropagates(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	conv, _ := NewConv2d("c", 1, 2, 3, 1, 1, false, rng)
	bn, _ := NewBatchNorm2d("bn", 2)
	x := tensor.New(1, 1, 4, 4)
	x.Data()[5] = float32(math.NaN())
	g := NewInferenceGraph()
	h, err := conv.Forward(g, g.Input(x))
	if err != nil {
		t.Fatal(err)
	}
	h, _ = bn.ForwardReLU(g, h)
	p, _ := MaxPool2d{3, 2, 1}.Forward(g, h)
	if !p.Value.HasNaN() {
		t.Errorf("NaN input did not reach the output: %v", p.Value.Data())
	}
	r := ReLU(g, g.Input(tensor.MustFromSlice([]float32{float32(math.NaN()), -1}, 2)))
	if !math.IsNaN(float64(r.Value.Data()[0])) || r.Value.Data()[1] != 0 {
		t.Errorf("ReLU(NaN, -1) = %v", r.Value.Data())
	}
}

func TestMaxPoolGradientGoesToFirstMaximum(t *testing.T) {
	// A 3x3 plane of equal values: every window's first maximum in
	// row-major order gets the gradient.
	x := tensor.New(1, 1, 3, 3)
	Fill(x, 1)
	g := NewGraph()
	xv := g.Leaf(x, true)
	y, err := MaxPool2d{3, 2, 1}.Forward(g, xv)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Backward(Sum(g, y)); err != nil {
		t.Fatal(err)
	}
	// Outputs 2x2: windows start at (-1,-1), (-1,1), (1,-1), (1,1); their
	// first valid elements are (0,0), (0,1), (1,0), (1,1).
	want := []float32{1, 1, 0, 1, 1, 0, 0, 0, 0}
	for i, v := range xv.Grad.Data() {
		if v != want[i] {
			t.Fatalf("grad %v, want %v", xv.Grad.Data(), want)
		}
	}
}

func TestBatchNormModes(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	x := randTensor(rng, 0, 2, 3, 4, 4)
	for _, mode := range []BNMode{BNTrain, BNEval, BNFrozen} {
		bn, _ := NewBatchNorm2d("bn", 3)
		Uniform(bn.RunningMean, -1, 1, rng)
		Uniform(bn.RunningVar, 0.5, 2, rng)
		rm0 := bn.RunningMean.Clone()
		bn.SetMode(mode)
		g := NewGraph()
		xv := g.Leaf(x, true)
		y, err := bn.Forward(g, xv)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Backward(Sum(g, y)); err != nil {
			t.Fatal(err)
		}
		changed := bn.RunningMean.Data()[0] != rm0.Data()[0]
		nbt := bn.NumBatchesTracked.Data()[0]
		if (mode == BNTrain) != changed || (mode == BNTrain) != (nbt == 1) {
			t.Errorf("%v: running stats changed=%v, num_batches_tracked=%v", mode, changed, nbt)
		}
		hasParamGrad := bn.Weight.Grad != nil
		if (mode != BNFrozen) != hasParamGrad {
			t.Errorf("%v: gamma gradient present=%v", mode, hasParamGrad)
		}
		if mode == BNFrozen && len(bn.Params()) != 0 {
			t.Errorf("frozen BN lists parameters")
		}
		// d sum(BN_train(x)) / dx is zero (the mean is subtracted).
		if mode == BNTrain {
			for _, v := range xv.Grad.Data() {
				if math.Abs(float64(v)) > 1e-5 {
					t.Errorf("train: d sum/dx = %v, want 0", v)
					break
				}
			}
		}
		// A frozen BN stays frozen when the model switches to training.
		bn.SetMode(BNTrain)
		if mode == BNFrozen && bn.Mode != BNFrozen {
			t.Errorf("frozen BN left frozen mode")
		}
	}
}

func TestGraphBackwardErrors(t *testing.T) {
	p := NewParam("w", 2)
	g := NewInferenceGraph()
	y := Sum(g, g.Param(p))
	if err := g.Backward(y); !errors.Is(err, ErrNoGrad) {
		t.Errorf("inference graph Backward: %v", err)
	}
	g = NewGraph()
	v := g.Param(p)
	if err := g.Backward(v); err == nil {
		t.Error("Backward accepted a non-scalar loss")
	}
	loss := Sum(g, v)
	if err := g.Backward(loss); err != nil {
		t.Fatal(err)
	}
	if err := g.Backward(loss); !errors.Is(err, ErrNoGrad) {
		t.Errorf("second Backward: %v", err)
	}
	c := NewGraph()
	if err := c.Backward(Sum(c, c.Input(tensor.New(2)))); !errors.Is(err, ErrNoGrad) {
		t.Errorf("constant loss: %v", err)
	}
	// Gradients accumulate across graphs until ZeroGrad.
	g2 := NewGraph()
	if err := g2.Backward(Sum(g2, g2.Param(p))); err != nil {
		t.Fatal(err)
	}
	if p.Grad.Data()[0] != 2 {
		t.Errorf("accumulated grad %v, want 2", p.Grad.Data()[0])
	}
	p.ZeroGrad()
	p.Trainable = false
	g3 := NewGraph()
	if err := g3.Backward(Sum(g3, g3.Param(p))); !errors.Is(err, ErrNoGrad) {
		t.Errorf("frozen parameter: %v", err)
	}
}

func TestArenaReusesBuffers(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	conv, _ := NewConv2d("c", 3, 4, 3, 1, 1, false, rng)
	a := NewArena()
	x := randTensor(rng, 0, 1, 3, 8, 8)
	var first []float32
	for i := range 3 {
		g := NewGraph().WithArena(a)
		y, err := conv.Forward(g, g.Input(x))
		if err != nil {
			t.Fatal(err)
		}
		out := append([]float32(nil), y.Value.Data()...)
		if i == 0 {
			first = out
		} else if golden := first; len(golden) != len(out) || golden[7] != out[7] {
			t.Fatal("results changed between arena iterations")
		}
		g.Release()
	}
	if a.Held() == 0 {
		t.Error("arena holds no buffers after Release")
	}
}

func TestStateDict(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	conv, _ := NewConv2d("conv", 3, 4, 3, 1, 1, true, rng)
	bn, _ := NewBatchNorm2d("bn", 4)
	sd := NewStateDict()
	conv.AddState(sd, "conv.")
	bn.AddState(sd, "bn.")
	want := []string{"conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"}
	if strings.Join(sd.Keys, ",") != strings.Join(want, ",") {
		t.Fatalf("keys %v, want %v", sd.Keys, want)
	}
	if sd.Param("conv.weight") != conv.Weight || sd.Param("bn.running_mean") != nil {
		t.Error("Param lookup wrong")
	}
	src := map[string]*tensor.Tensor{}
	for _, k := range sd.Keys {
		src[k] = sd.Tensors[k].Clone()
	}
	src["bn.running_var"].Data()[0] = 7
	if err := CopyState(sd, src); err != nil || bn.RunningVar.Data()[0] != 7 {
		t.Fatalf("CopyState: %v, running_var %v", err, bn.RunningVar.Data()[0])
	}
	src["extra"] = tensor.New(1)
	src["conv.bias"] = tensor.New(5)
	delete(src, "bn.weight")
	err := CopyState(sd, src)
	for _, s := range []string{"missing [bn.weight]", "unexpected [extra]", "conv.bias [5] vs [4]"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("CopyState error %v lacks %q", err, s)
		}
	}
}

func TestInitialisation(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	conv, _ := NewConv2d("c", 16, 32, 3, 1, 1, true, rng)
	bound := 1 / math.Sqrt(16*9)
	var maxAbs float64
	for _, v := range conv.Weight.Value.Data() {
		maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
	}
	if maxAbs > bound || maxAbs < 0.9*bound {
		t.Errorf("conv weight max |w| %v, want just under %v", maxAbs, bound)
	}
	same, _ := NewConv2d("c", 16, 32, 3, 1, 1, true, rand.New(rand.NewSource(8)))
	if same.Weight.Value.Data()[3] != conv.Weight.Value.Data()[3] {
		t.Error("initialisation is not deterministic for a seed")
	}
	bn, _ := NewBatchNorm2d("bn", 4)
	if bn.Weight.Value.Data()[0] != 1 || bn.Bias.Value.Data()[0] != 0 || bn.RunningVar.Data()[0] != 1 || bn.NumBatchesTracked.Dims() != 0 {
		t.Error("BatchNorm initial values differ from torch's")
	}
}

func TestPermuteValues(t *testing.T) {
	x := tensor.New(1, 2, 2, 3) // NCHW
	for i := range x.Data() {
		x.Data()[i] = float32(i)
	}
	g := NewInferenceGraph()
	y, err := Permute(g, g.Input(x), 0, 2, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	// y[0,h,w,c] = x[0,c,h,w] = c*6 + h*3 + w.
	for h := range 2 {
		for w := range 3 {
			for c := range 2 {
				if got, want := y.Value.At(0, h, w, c), float32(c*6+h*3+w); got != want {
					t.Fatalf("y[0,%d,%d,%d] = %v, want %v", h, w, c, got, want)
				}
			}
		}
	}
	if _, err := Permute(g, g.Input(x), 0, 1, 1, 2); err == nil {
		t.Error("Permute accepted a repeated axis")
	}
	if _, err := Concat(g, g.Input(tensor.New(2, 3)), g.Input(tensor.New(2, 4))); err == nil {
		t.Error("Concat accepted mismatched widths")
	}
}
