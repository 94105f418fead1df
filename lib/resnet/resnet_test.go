package resnet

import (
	"errors"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

func TestBadInput(t *testing.T) {
	m, err := New18(10, rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		shape []int
		want  string
	}{
		{"grey image", []int{1, 1, 64, 64}, "3 (RGB) channels"},
		{"four channels", []int{1, 4, 64, 64}, "3 (RGB) channels"},
		{"no batch dimension", []int{3, 64, 64}, "NCHW"},
		{"zero height", []int{1, 3, 0, 64}, "empty"},
		{"zero width", []int{1, 3, 64, 0}, "empty"},
		{"empty batch", []int{0, 3, 64, 64}, "empty"},
	}
	for _, c := range cases {
		g := nn.NewInferenceGraph()
		_, err := m.Forward(g, g.Input(tensor.New(c.shape...)))
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Forward error %v, want ErrInput mentioning %q", c.name, err, c.want)
		}
		if _, err := m.OutputShape(c.shape); !errors.Is(err, ErrInput) {
			t.Errorf("%s: OutputShape error %v", c.name, err)
		}
	}
	// A tiny image still runs: 1x1 after every stride.
	g := nn.NewInferenceGraph()
	y, err := m.Forward(g, g.Input(tensor.New(1, 3, 1, 1)))
	if err != nil || !tensor.SameShape(y.Shape(), []int{1, 10}) {
		t.Errorf("1x1 image: %v, %v", y, err)
	}
	if _, err := New18(0, rand.New(rand.NewSource(1))); err == nil {
		t.Error("New18 accepted 0 classes")
	}
}

// NaN in the input is not rejected: it propagates to the logits (the
// documented policy; callers check tensor.HasNaN).
func TestNaNInputPropagates(t *testing.T) {
	m, _ := New18(4, rand.New(rand.NewSource(1)))
	x := tensor.New(1, 3, 32, 32)
	x.Data()[100] = float32(math.NaN())
	g := nn.NewInferenceGraph()
	y, err := m.Forward(g, g.Input(x))
	if err != nil {
		t.Fatal(err)
	}
	if !y.Value.HasNaN() {
		t.Errorf("logits %v hold no NaN", y.Value)
	}
}

func TestShapes(t *testing.T) {
	m, _ := New18(7, rand.New(rand.NewSource(1)))
	for _, in := range [][]int{{1, 3, 224, 224}, {2, 3, 97, 130}, {1, 3, 320, 480}} {
		g := nn.NewInferenceGraph()
		x := tensor.New(in...)
		f, err := m.Features(g, g.Input(x), 4)
		if err != nil {
			t.Fatal(err)
		}
		for s, v := range []*nn.Var{f.Stem, f.Layer1, f.Layer2, f.Layer3, f.Layer4} {
			want, err := m.FeatureShape(in, s)
			if err != nil || !tensor.SameShape(v.Shape(), want) {
				t.Errorf("input %v stage %d: shape %v, FeatureShape %v (%v)", in, s, v.Shape(), want, err)
			}
		}
		out, _ := m.OutputShape(in)
		if !tensor.SameShape(out, []int{in[0], 7}) {
			t.Errorf("OutputShape %v", out)
		}
	}
}

func TestStateDictKeys(t *testing.T) {
	m, _ := New18(1000, rand.New(rand.NewSource(1)))
	sd := m.StateDict()
	wf := golden.Load(t, "resnet18.safetensors")
	if len(sd.Keys) != len(wf.Names) {
		t.Fatalf("%d keys, file has %d", len(sd.Keys), len(wf.Names))
	}
	for i, k := range wf.Names {
		if sd.Keys[i] != k {
			t.Errorf("key %d: %s, torchvision %s", i, sd.Keys[i], k)
		}
		if !tensor.SameShape(sd.Tensors[k].Shape(), wf.Entries[k].Shape) {
			t.Errorf("%s: shape %v, torchvision %v", k, sd.Tensors[k].Shape(), wf.Entries[k].Shape)
		}
	}
	if p := sd.Param("layer2.0.downsample.0.weight"); p == nil || p.Name != "layer2.0.downsample.0.weight" {
		t.Errorf("downsample param %v", p)
	}
}

// The body loads ImageNet-keyed weights through BodyKey and computes the
// same layer4 map as the classifier.
func TestBodyLoadsResNetWeights(t *testing.T) {
	io := golden.Load(t, "resnet18_io.safetensors")
	wf := golden.Load(t, "resnet18.safetensors")
	body, err := NewBody(DefaultBodyConfig(), rand.New(rand.NewSource(3)))
	if err != nil {
		t.Fatal(err)
	}
	sd := body.StateDict()
	src := map[string]*tensor.Tensor{}
	for _, k := range wf.Names {
		if bk, ok := BodyKey(k, "backbone."); ok {
			src[bk] = wf.Entries[k].Tensor().Clone()
			if back, ok := ResNetKey(bk, "backbone."); !ok || back != k {
				t.Errorf("ResNetKey(%s) = %s, want %s", bk, back, k)
			}
		} else if !strings.HasPrefix(k, "fc.") {
			t.Errorf("BodyKey dropped %s", k)
		}
	}
	if err := nn.CopyState(sd, src); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"backbone.0.weight", "backbone.1.running_var", "backbone.4.0.conv1.weight", "backbone.7.1.bn2.bias", "backbone.5.0.downsample.1.weight"} {
		if sd.Tensors[k] == nil {
			t.Errorf("body state dict lacks %s", k)
		}
	}
	x := golden.Entry(t, io, "x").Tensor()
	g := nn.NewInferenceGraph()
	y, err := body.Forward(g, g.Input(x))
	if err != nil {
		t.Fatal(err)
	}
	want := golden.Entry(t, io, "eval.layer4")
	golden.Check(t, "body layer4", y.Value.Data(), want.F32Data, golden.ResNet18IO["eval.layer4"])
	if body.OutChannels() != y.Shape()[1] {
		t.Errorf("OutChannels %d, map has %d", body.OutChannels(), y.Shape()[1])
	}
}

func TestTrainableLayers(t *testing.T) {
	count := func(b *Body) (conv1, bn1 bool, layers [4]bool) {
		m := b.Net
		conv1, bn1 = m.Conv1.Weight.Trainable, m.BN1.Weight.Trainable
		for s := range 4 {
			layers[s] = m.Layers[s][1].Conv2.Weight.Trainable
		}
		return
	}
	for n := 0; n <= 5; n++ {
		b, err := NewBody(BodyConfig{TrainableLayers: n}, rand.New(rand.NewSource(1)))
		if err != nil {
			t.Fatal(err)
		}
		conv1, bn1, layers := count(b)
		for s := range 4 {
			if want := 4-s <= n; layers[s] != want {
				t.Errorf("n=%d: layer%d trainable %v, want %v", n, s+1, layers[s], want)
			}
		}
		if conv1 != (n == 5) || bn1 != (n == 5) {
			t.Errorf("n=%d: conv1 %v bn1 %v", n, conv1, bn1)
		}
		// Only trainable parameters get gradients.
		b.SetTraining(true)
		g := nn.NewGraph()
		x := tensor.New(2, 3, 32, 32)
		for i := range x.Data() {
			x.Data()[i] = float32(i%7) - 3
		}
		y, err := b.Forward(g, g.Input(x))
		if err != nil {
			t.Fatal(err)
		}
		err = g.Backward(nn.Sum(g, y))
		if n == 0 {
			if !errors.Is(err, nn.ErrNoGrad) {
				t.Errorf("n=0: Backward %v, want ErrNoGrad", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if (b.Net.Conv1.Weight.Grad != nil) != (n == 5) {
			t.Errorf("n=%d: conv1 grad present %v", n, b.Net.Conv1.Weight.Grad != nil)
		}
	}
	if _, err := NewBody(BodyConfig{TrainableLayers: 6}, rand.New(rand.NewSource(1))); err == nil {
		t.Error("NewBody accepted 6 trainable layers")
	}
	fb, _ := NewBody(BodyConfig{TrainableLayers: 5, FrozenBN: true}, rand.New(rand.NewSource(1)))
	for _, bn := range fb.Net.BatchNorms() {
		if bn.Mode != nn.BNFrozen || bn.Weight.Trainable {
			t.Fatalf("frozen body has BN %s in mode %v, trainable %v", bn.Weight.Name, bn.Mode, bn.Weight.Trainable)
		}
	}
	fb.SetTraining(true)
	if fb.Net.BN1.Mode != nn.BNFrozen {
		t.Error("SetTraining unfroze a frozen BN")
	}
}
