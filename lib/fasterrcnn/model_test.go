package fasterrcnn

import (
	"context"
	"errors"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/roi"
	"github.com/detlab/detlab/lib/rpn"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/weights"
)

// tinyBackbone is a stride-8 test backbone (one 8x8/8 convolution and
// ReLU) that keeps the model tests fast.
type tinyBackbone struct {
	conv     *nn.Conv2d
	training bool
}

func newTinyBackbone(t testing.TB) *tinyBackbone {
	c, err := nn.NewConv2d("conv", 3, 8, 8, 8, 0, true, rand.New(rand.NewSource(9)))
	if err != nil {
		t.Fatal(err)
	}
	return &tinyBackbone{conv: c}
}

func (b *tinyBackbone) Forward(g *nn.Graph, x *nn.Var) (*nn.Var, error) {
	y, err := b.conv.Forward(g, x)
	if err != nil {
		return nil, err
	}
	return nn.ReLU(g, y), nil
}
func (b *tinyBackbone) OutChannels() int                         { return 8 }
func (b *tinyBackbone) SetTraining(train bool)                   { b.training = train }
func (b *tinyBackbone) Params() []*nn.Param                      { return b.conv.Params() }
func (b *tinyBackbone) AddState(sd *nn.StateDict, prefix string) { b.conv.AddState(sd, prefix+"conv.") }

// tinyConfig is a fast configuration: small images, a stride-8 backbone,
// small heads.
func tinyConfig(t testing.TB) Config {
	c := Defaults(3)
	c.MinSize, c.MaxSize = 64, 96
	c.Anchors.Sizes = []float64{16, 32}
	c.RepresentationSize = 16
	c.Backbone = newTinyBackbone(t)
	c.Seed = 1
	return c
}

func randomImage(rng *rand.Rand, h, w int) *tensor.Tensor {
	img := tensor.New(3, h, w)
	for i := range img.Data() {
		img.Data()[i] = rng.Float32()
	}
	return img
}

func TestDefaults(t *testing.T) {
	c := Defaults(5)
	checks := []struct {
		name      string
		got, want float64
	}{
		{"NumClasses", float64(c.NumClasses), 5},
		{"MinSize", float64(c.MinSize), 800},
		{"MaxSize", float64(c.MaxSize), 1333},
		{"SizeDivisible", float64(c.SizeDivisible), 32},
		{"anchors per location", float64(c.Anchors.NumAnchorsPerLocation()), 15},
		{"RPN.PreNMSTopNTrain", float64(c.RPN.PreNMSTopNTrain), 2000},
		{"RPN.PostNMSTopNTrain", float64(c.RPN.PostNMSTopNTrain), 2000},
		{"RPN.PreNMSTopNTest", float64(c.RPN.PreNMSTopNTest), 1000},
		{"RPN.PostNMSTopNTest", float64(c.RPN.PostNMSTopNTest), 1000},
		{"RPN.NMSThresh", c.RPN.NMSThresh, 0.7},
		{"RPN.BatchSizePerImage", float64(c.RPN.BatchSizePerImage), 256},
		{"RPN.PositiveFraction", c.RPN.PositiveFraction, 0.5},
		{"RoI.ScoreThresh", c.RoI.ScoreThresh, 0.05},
		{"RoI.NMSThresh", c.RoI.NMSThresh, 0.5},
		{"RoI.DetectionsPerImg", float64(c.RoI.DetectionsPerImg), 100},
		{"RoI.BatchSizePerImage", float64(c.RoI.BatchSizePerImage), 512},
		{"RoI.PositiveFraction", c.RoI.PositiveFraction, 0.25},
		{"RoIOutputSize", float64(c.RoIOutputSize), 7},
		{"RoISamplingRatio", float64(c.RoISamplingRatio), 2},
		{"RepresentationSize", float64(c.RepresentationSize), 1024},
		{"TrainableBackboneLayers", float64(c.TrainableBackboneLayers), 5},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if c.Backbone != nil || c.RPNHead != nil || c.BoxHead != nil || c.Predictor != nil || c.FrozenBN {
		t.Error("defaults set an extension part or FrozenBN")
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Defaults(5).Validate: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"one class", func(c *Config) { c.NumClasses = 1 }, "NumClasses"},
		{"zero min size", func(c *Config) { c.MinSize = 0 }, "MinSize"},
		{"negative max size", func(c *Config) { c.MaxSize = -1 }, "MaxSize"},
		{"two means", func(c *Config) { c.ImageMean = []float64{0, 0}; c.ImageStd = []float64{1, 1} }, "ImageMean"},
		{"zero std", func(c *Config) { c.ImageStd = []float64{1, 0, 1} }, "Std"},
		{"no anchor sizes", func(c *Config) { c.Anchors.Sizes = nil }, "Anchors"},
		{"negative ratio", func(c *Config) { c.Anchors.AspectRatios = []float64{-1} }, "aspect"},
		{"NaN size", func(c *Config) { c.Anchors.Sizes = []float64{math.NaN()} }, "anchor"},
		{"RPN top-n", func(c *Config) { c.RPN.PreNMSTopNTest = 0 }, "RPN"},
		{"RoI batch", func(c *Config) { c.RoI.BatchSizePerImage = 0 }, "RoI"},
		{"roi output", func(c *Config) { c.RoIOutputSize = 0 }, "RoIOutputSize"},
		{"sampling ratio", func(c *Config) { c.RoISamplingRatio = -1 }, "RoISamplingRatio"},
		{"representation", func(c *Config) { c.RepresentationSize = 0 }, "RepresentationSize"},
		{"trainable layers", func(c *Config) { c.Backbone = nil; c.TrainableBackboneLayers = 6 }, "TrainableBackboneLayers"},
		{"box head without predictor", func(c *Config) {
			c.BoxHead = roi.BoxHeadFunc(func(g *nn.Graph, x *nn.Var) (*nn.Var, error) { return x, nil })
		}, "Predictor"},
	}
	for _, tc := range cases {
		c := tinyConfig(t)
		tc.mutate(&c)
		_, err := New(c)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrConfig mentioning %q", tc.name, err, tc.want)
		}
	}
}

// TestStateDictKeys builds the default model and checks torchvision's keys,
// parameter names and the trainable-layers option.
func TestStateDictKeys(t *testing.T) {
	c := Defaults(4)
	c.RepresentationSize = 8
	c.TrainableBackboneLayers = 3
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	sd := m.StateDict()
	for _, k := range []string{
		"backbone.0.weight", "backbone.1.running_var", "backbone.1.num_batches_tracked", "backbone.4.0.conv1.weight",
		"backbone.7.1.bn2.bias", "backbone.5.0.downsample.0.weight",
		"rpn.head.conv.0.0.weight", "rpn.head.conv.0.0.bias", "rpn.head.cls_logits.weight", "rpn.head.bbox_pred.bias",
		"roi_heads.box_head.fc6.weight", "roi_heads.box_head.fc7.bias",
		"roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.bbox_pred.bias",
	} {
		if sd.Tensors[k] == nil {
			t.Errorf("state dict has no %s", k)
		}
	}
	if s := sd.Tensors["roi_heads.box_head.fc6.weight"].Shape(); s[0] != 8 || s[1] != 512*7*7 {
		t.Errorf("fc6 weight %v", s)
	}
	if s := sd.Tensors["roi_heads.box_predictor.bbox_pred.weight"].Shape(); s[0] != 16 {
		t.Errorf("bbox_pred weight %v", s)
	}
	if s := sd.Tensors["rpn.head.cls_logits.weight"].Shape(); s[0] != 15 {
		t.Errorf("cls_logits weight %v", s)
	}
	for _, k := range sd.Keys {
		if p := sd.Param(k); p != nil && p.Name != k {
			t.Errorf("parameter under %s is named %s", k, p.Name)
		}
	}
	trainable := map[string]bool{}
	for _, p := range m.Params() {
		trainable[p.Name] = true
	}
	if trainable["backbone.0.weight"] || trainable["backbone.4.0.conv1.weight"] || !trainable["backbone.5.0.conv1.weight"] || !trainable["rpn.head.conv.0.0.weight"] {
		t.Error("trainable layers 3 should freeze conv1 and layer1 only")
	}
	if m.Training() {
		t.Error("New returned a model in training mode")
	}
}

// TestLossesTrainStep trains one step on two images, one of them without
// ground truth (all negatives) and one with a box reaching outside the
// image, and checks that every part gets a gradient.
func TestLossesTrainStep(t *testing.T) {
	m, err := New(tinyConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	m.Train()
	rng := rand.New(rand.NewSource(2))
	images := []*tensor.Tensor{randomImage(rng, 60, 80), randomImage(rng, 50, 40)}
	targets := []Target{
		{Boxes: []box.Box{{X1: 5, Y1: 5, X2: 40, Y2: 30}, {X1: 50, Y1: -10, X2: 100, Y2: 20}}, Labels: []int{1, 2}},
		{},
	}
	l, err := m.Losses(context.Background(), images, targets)
	if err != nil {
		t.Fatal(err)
	}
	vals := l.Values()
	var sum float32
	for _, k := range []string{"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"} {
		v, ok := vals[k]
		if !ok || math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || v < 0 {
			t.Errorf("%s = %v", k, v)
		}
		sum += v
	}
	if d := math.Abs(float64(sum - vals["loss"])); d > 1e-5 {
		t.Errorf("total %v, sum of parts %v", vals["loss"], sum)
	}
	m.ZeroGrad()
	if err := l.Backward(); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		if p.Grad == nil {
			t.Errorf("%s has no gradient", p.Name)
			continue
		}
		for _, v := range p.Grad.Data() {
			if math.IsNaN(float64(v)) {
				t.Fatalf("%s has a NaN gradient", p.Name)
			}
		}
	}
	if err := l.Backward(); err == nil {
		t.Error("second Backward succeeded")
	}
	// A batch of images without any ground truth trains too.
	l, err = m.Losses(context.Background(), images, []Target{{}, {}})
	if err != nil {
		t.Fatalf("no ground truth at all: %v", err)
	}
	if v := l.Values()["loss_box_reg"]; v != 0 {
		t.Errorf("box loss without ground truth = %v", v)
	}
	if v := l.Values()["loss_rpn_box_reg"]; v != 0 {
		t.Errorf("rpn box loss without ground truth = %v", v)
	}
}

func TestPredict(t *testing.T) {
	m, err := New(tinyConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(3))
	images := []*tensor.Tensor{randomImage(rng, 60, 80), randomImage(rng, 120, 70)}
	dets, err := m.PredictTensors(context.Background(), images)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 2 {
		t.Fatalf("%d detection sets", len(dets))
	}
	for i, d := range dets {
		h, w := float32(images[i].Dim(1)), float32(images[i].Dim(2))
		if len(d.Boxes) != len(d.Scores) || len(d.Boxes) != len(d.Labels) || len(d.Boxes) > m.Config().RoI.DetectionsPerImg {
			t.Fatalf("image %d: %d boxes, %d scores, %d labels", i, len(d.Boxes), len(d.Scores), len(d.Labels))
		}
		for j, b := range d.Boxes {
			if b.X1 < 0 || b.Y1 < 0 || b.X2 > w+1e-3 || b.Y2 > h+1e-3 {
				t.Errorf("image %d box %v outside the original %vx%v image", i, b, h, w)
			}
			if d.Labels[j] < 1 || d.Labels[j] >= 3 || !(d.Scores[j] > 0.05) {
				t.Errorf("image %d detection %d: label %d score %v", i, j, d.Labels[j], d.Scores[j])
			}
		}
	}
	// Predict runs in evaluation mode whatever the model's mode and leaves
	// the mode (and the backbone's statistics) alone.
	m.Train()
	bb := m.Backbone.(*tinyBackbone)
	if _, err := m.PredictTensors(context.Background(), images[:1]); err != nil {
		t.Fatal(err)
	}
	if !m.Training() || !bb.training {
		t.Error("Predict changed the model's mode")
	}
}

func TestBadInput(t *testing.T) {
	m, err := New(tinyConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(4))
	good := randomImage(rng, 40, 40)
	nanImg := randomImage(rng, 40, 40)
	nanImg.Data()[17] = float32(math.NaN())
	gt := Target{Boxes: []box.Box{{X1: 1, Y1: 1, X2: 20, Y2: 20}}, Labels: []int{1}}
	nan := float32(math.NaN())
	cases := []struct {
		name    string
		images  []*tensor.Tensor
		targets []Target
	}{
		{"NaN pixel", []*tensor.Tensor{nanImg}, []Target{gt}},
		{"zero-size image", []*tensor.Tensor{tensor.New(3, 0, 10)}, []Target{{}}},
		{"one channel", []*tensor.Tensor{tensor.New(1, 10, 10)}, []Target{{}}},
		{"2-D image", []*tensor.Tensor{tensor.New(10, 10)}, []Target{{}}},
		{"no images", nil, nil},
		{"targets for another batch", []*tensor.Tensor{good}, []Target{gt, gt}},
		{"labels and boxes differ", []*tensor.Tensor{good}, []Target{{Boxes: gt.Boxes}}},
		{"background label", []*tensor.Tensor{good}, []Target{{Boxes: gt.Boxes, Labels: []int{0}}}},
		{"label past NumClasses", []*tensor.Tensor{good}, []Target{{Boxes: gt.Boxes, Labels: []int{3}}}},
		{"empty box", []*tensor.Tensor{good}, []Target{{Boxes: []box.Box{{X1: 5, Y1: 5, X2: 5, Y2: 9}}, Labels: []int{1}}}},
		{"inverted box", []*tensor.Tensor{good}, []Target{{Boxes: []box.Box{{X1: 9, Y1: 5, X2: 5, Y2: 9}}, Labels: []int{1}}}},
		{"NaN box", []*tensor.Tensor{good}, []Target{{Boxes: []box.Box{{X1: nan, Y1: 5, X2: 5, Y2: 9}}, Labels: []int{1}}}},
	}
	for _, c := range cases {
		if _, err := m.Losses(context.Background(), c.images, c.targets); !errors.Is(err, ErrInput) {
			t.Errorf("Losses, %s: err = %v, want ErrInput", c.name, err)
		}
	}
	for _, c := range cases[:5] {
		if _, err := m.PredictTensors(context.Background(), c.images); !errors.Is(err, ErrInput) {
			t.Errorf("PredictTensors, %s: err = %v, want ErrInput", c.name, err)
		}
	}
	if _, err := m.Predict(context.Background(), nil); !errors.Is(err, ErrInput) {
		t.Errorf("Predict(nil): %v", err)
	}
	if _, err := m.PredictBatch(context.Background(), nil); !errors.Is(err, ErrInput) {
		t.Errorf("PredictBatch(nil): %v", err)
	}
	var l *Losses
	if err := l.Backward(); !errors.Is(err, ErrInput) {
		t.Errorf("nil Losses.Backward: %v", err)
	}
}

func TestContextCancelled(t *testing.T) {
	m, err := New(tinyConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	img := randomImage(rand.New(rand.NewSource(5)), 40, 40)
	if _, err := m.PredictTensors(ctx, []*tensor.Tensor{img}); !errors.Is(err, context.Canceled) {
		t.Errorf("PredictTensors: %v", err)
	}
	if _, err := m.Losses(ctx, []*tensor.Tensor{img}, []Target{{}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Losses: %v", err)
	}
}

// TestCustomParts builds a model around heads given as functions and a
// custom predictor, as a notebook would.
func TestCustomParts(t *testing.T) {
	c := tinyConfig(t)
	a := c.Anchors.NumAnchorsPerLocation()
	called := 0
	c.RPNHead = rpn.HeadFunc(func(g *nn.Graph, f *nn.Var) (*nn.Var, *nn.Var, error) {
		called++
		s := f.Shape()
		return g.Input(tensor.New(s[0], a, s[2], s[3])), g.Input(tensor.New(s[0], 4*a, s[2], s[3])), nil
	})
	pred, err := roi.NewFastRCNNPredictor(8*7*7, c.NumClasses, rand.New(rand.NewSource(6)))
	if err != nil {
		t.Fatal(err)
	}
	c.BoxHead = roi.BoxHeadFunc(func(g *nn.Graph, x *nn.Var) (*nn.Var, error) {
		return nn.Reshape(g, x, x.Shape()[0], -1)
	})
	c.Predictor = pred
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if m.StateDict().Tensors["roi_heads.box_predictor.cls_score.weight"] == nil || m.StateDict().Tensors["rpn.head.conv.0.0.weight"] != nil {
		t.Error("state dict does not reflect the custom parts")
	}
	if _, err := m.PredictTensors(context.Background(), []*tensor.Tensor{randomImage(rand.New(rand.NewSource(7)), 40, 50)}); err != nil {
		t.Fatal(err)
	}
	if called != 1 {
		t.Errorf("custom RPN head called %d times", called)
	}
	// A head whose output does not match the anchors is reported.
	c.RPNHead = rpn.HeadFunc(func(g *nn.Graph, f *nn.Var) (*nn.Var, *nn.Var, error) { return f, f, nil })
	m, err = New(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.PredictTensors(context.Background(), []*tensor.Tensor{randomImage(rand.New(rand.NewSource(7)), 40, 50)}); err == nil || !strings.Contains(err.Error(), "rpn head returned") {
		t.Errorf("mismatched RPN head: %v", err)
	}
}

// TestLoadBackbone loads torchvision's ImageNet-layout resnet18 weights
// into the default model's body.
func TestLoadBackbone(t *testing.T) {
	f := golden.Load(t, "resnet18.safetensors")
	c := Defaults(3)
	c.RepresentationSize = 8
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.LoadBackbone(f); err != nil {
		t.Fatal(err)
	}
	got := m.StateDict().Tensors["backbone.7.1.conv2.weight"].Data()
	want := golden.Entry(t, f, "layer4.1.conv2.weight").F32Data
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backbone.7.1.conv2.weight[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	partial := &weights.File{Names: []string{"conv1.weight"}, Entries: map[string]*weights.Entry{"conv1.weight": f.Entries["conv1.weight"]}}
	if _, err := m.LoadBackbone(partial); !errors.Is(err, ErrInput) {
		t.Errorf("partial backbone file: %v", err)
	}
	if _, err := m.Load(f, weights.LoadOptions{}); !errors.Is(err, weights.ErrKeys) {
		t.Errorf("strict load of resnet18 keys into the detector: %v", err)
	}
}

// TestNoProposals checks an RPN that proposes nothing (NaN logits are never
// proposed): prediction returns no detections, without error.
func TestNoProposals(t *testing.T) {
	c := tinyConfig(t)
	a := c.Anchors.NumAnchorsPerLocation()
	c.RPNHead = rpn.HeadFunc(func(g *nn.Graph, f *nn.Var) (*nn.Var, *nn.Var, error) {
		s := f.Shape()
		obj := tensor.New(s[0], a, s[2], s[3])
		nn.Fill(obj, float32(math.NaN()))
		return g.Input(obj), g.Input(tensor.New(s[0], 4*a, s[2], s[3])), nil
	})
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	dets, err := m.PredictTensors(context.Background(), []*tensor.Tensor{randomImage(rand.New(rand.NewSource(8)), 40, 50)})
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 1 || len(dets[0].Boxes) != 0 {
		t.Errorf("detections %+v, want none", dets)
	}
}

// TestLoadPth loads the heads from torch.save's .pth file: the same values
// as the safetensors file.
func TestLoadPth(t *testing.T) {
	path := golden.Path(t, "frcnn_weights.pth")
	st := golden.Load(t, "frcnn_weights.safetensors")
	m, err := New(fixtureModelConfig(t, st))
	if err != nil {
		t.Fatal(err)
	}
	f, err := weights.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := m.Load(f, weights.LoadOptions{AllowMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Loaded) != len(st.Names) {
		t.Errorf("loaded %d tensors from the .pth, the safetensors file has %d", len(rep.Loaded), len(st.Names))
	}
	for _, n := range st.Names {
		got, want := m.StateDict().Tensors[n].Data(), st.Entries[n].F32Data
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s[%d] = %v from .pth, %v from safetensors", n, i, got[i], want[i])
			}
		}
	}
}

// TestRepeatable runs two training steps and two predictions on the same
// inputs: with buffers recycled between passes the results must not change.
// Every anchor and proposal is sampled, so the samplers draw nothing.
func TestRepeatable(t *testing.T) {
	c := tinyConfig(t)
	c.RPN.BatchSizePerImage, c.RoI.BatchSizePerImage = 100000, 100000
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	m.Train()
	rng := rand.New(rand.NewSource(10))
	images := []*tensor.Tensor{randomImage(rng, 60, 80), randomImage(rng, 64, 64)}
	targets := []Target{{Boxes: []box.Box{{X1: 5, Y1: 5, X2: 40, Y2: 30}}, Labels: []int{1}}, {Boxes: []box.Box{{X1: 10, Y1: 12, X2: 50, Y2: 60}}, Labels: []int{2}}}
	step := func() (map[string]float32, []float32) {
		l, err := m.Losses(context.Background(), images, targets)
		if err != nil {
			t.Fatal(err)
		}
		m.ZeroGrad()
		if err := l.Backward(); err != nil {
			t.Fatal(err)
		}
		var g []float32
		for _, p := range m.Params() {
			g = append(g, p.Grad.Data()...)
		}
		return l.Values(), g
	}
	v1, g1 := step()
	v2, g2 := step()
	for k, v := range v1 {
		if v2[k] != v {
			t.Errorf("%s: %v then %v", k, v, v2[k])
		}
	}
	for i := range g1 {
		if g1[i] != g2[i] {
			t.Fatalf("gradient %d: %v then %v", i, g1[i], g2[i])
		}
	}
	d1, err := m.PredictTensors(context.Background(), images)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := m.PredictTensors(context.Background(), images)
	if err != nil {
		t.Fatal(err)
	}
	for i := range d1 {
		if len(d1[i].Boxes) != len(d2[i].Boxes) {
			t.Fatalf("image %d: %d then %d detections", i, len(d1[i].Boxes), len(d2[i].Boxes))
		}
		for j := range d1[i].Boxes {
			if d1[i].Boxes[j] != d2[i].Boxes[j] || d1[i].Scores[j] != d2[i].Scores[j] {
				t.Fatalf("image %d detection %d differs between runs", i, j)
			}
		}
	}
}
