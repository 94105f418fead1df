package roi

import (
	"errors"
	"math"
	"math/rand"
	"strconv"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/internal/gradcheck"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/roialign"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/weights"
)

// goldenHeads builds the default box head and predictor with the shapes of
// frcnn_weights.safetensors and loads them.
func goldenHeads(t *testing.T) (*TwoMLPHead, *FastRCNNPredictor) {
	t.Helper()
	wf := golden.Load(t, "frcnn_weights.safetensors")
	fc6 := golden.Entry(t, wf, "roi_heads.box_head.fc6.weight").Shape
	cls := golden.Entry(t, wf, "roi_heads.box_predictor.cls_score.weight").Shape
	rng := rand.New(rand.NewSource(1))
	h, err := NewTwoMLPHead(fc6[1], fc6[0], rng)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewFastRCNNPredictor(fc6[0], cls[0], rng)
	if err != nil {
		t.Fatal(err)
	}
	sd := nn.NewStateDict()
	h.AddState(sd, "roi_heads.box_head.")
	p.AddState(sd, "roi_heads.box_predictor.")
	if _, err := weights.Load(sd.Tensors, wf, weights.LoadOptions{AllowUnexpected: true}); err != nil {
		t.Fatal(err)
	}
	return h, p
}

// TestGoldenHeads runs RoIAlign, the box head and the predictor on the
// reference features and proposals of frcnn_eval, stage by stage.
func TestGoldenHeads(t *testing.T) {
	f := golden.Load(t, "frcnn_eval.safetensors")
	h, p := goldenHeads(t)
	feats := golden.Entry(t, f, "backbone.features").Tensor()
	n := feats.Shape()[0]
	sizes := golden.Entry(t, f, "transform.image_sizes").I64Data
	var imageSizes [][2]int
	var boxes, first8 [][]float32
	for i := range n {
		imageSizes = append(imageSizes, [2]int{int(sizes[2*i]), int(sizes[2*i+1])})
		b := golden.Entry(t, f, "rpn.proposals."+strconv.Itoa(i)).F32Data
		boxes = append(boxes, b)
		first8 = append(first8, b[:min(len(b), 32)])
	}
	pooledRef := golden.Entry(t, f, "roi.pooled_first8")
	var fc struct {
		OutputSize    int `json:"roi_output_size"`
		SamplingRatio int `json:"roi_sampling_ratio"`
	}
	golden.Metadata(t, f, "config", &fc)
	if fc.OutputSize != pooledRef.Shape[2] {
		t.Fatalf("config roi_output_size %d, pooled shape %v", fc.OutputSize, pooledRef.Shape)
	}
	g := nn.NewInferenceGraph()
	fv := g.Input(feats)
	pool := roialign.NewMultiScale(fc.OutputSize, fc.SamplingRatio)
	pooled8, err := pool.Apply(g, fv, first8, imageSizes)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "roi.pooled_first8", pooled8.Value.Data(), pooledRef.F32Data, golden.Tol{Atol: 1e-4, RelL2: 1e-6})
	fc7, err := h.Forward(g, g.Input(pooledRef.Tensor()))
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "roi.fc7_first8", fc7.Value.Data(), golden.Entry(t, f, "roi.fc7_first8").F32Data, golden.Tol{Atol: 2e-5, RelL2: 5e-6})

	pooled, err := pool.Apply(g, fv, boxes, imageSizes)
	if err != nil {
		t.Fatal(err)
	}
	x, err := h.Forward(g, pooled)
	if err != nil {
		t.Fatal(err)
	}
	logits, reg, err := p.Forward(g, x)
	if err != nil {
		t.Fatal(err)
	}
	golden.CheckShape(t, "roi.class_logits", logits.Shape(), golden.Entry(t, f, "roi.class_logits").Shape)
	golden.Check(t, "roi.class_logits", logits.Value.Data(), golden.Entry(t, f, "roi.class_logits").F32Data, golden.Tol{Atol: 5e-5, RelL2: 2e-6})
	golden.Check(t, "roi.box_regression", reg.Value.Data(), golden.Entry(t, f, "roi.box_regression").F32Data, golden.Tol{Atol: 5e-6, RelL2: 2e-6})
}

// TestGoldenFastRCNNLoss computes the box-head losses from the train
// fixture's predictor outputs and sampled labels and targets.
func TestGoldenFastRCNNLoss(t *testing.T) {
	f := golden.Load(t, "frcnn_train.safetensors")
	var labels []int
	var targets []float32
	for i := 0; golden.Has(f, "roi.labels."+strconv.Itoa(i)); i++ {
		for _, v := range golden.Entry(t, f, "roi.labels."+strconv.Itoa(i)).I64Data {
			labels = append(labels, int(v))
		}
		targets = append(targets, golden.Entry(t, f, "roi.regression_targets."+strconv.Itoa(i)).F32Data...)
	}
	g := nn.NewGraph()
	logits := g.Leaf(golden.Entry(t, f, "roi.class_logits").Tensor().Clone(), true)
	reg := g.Leaf(golden.Entry(t, f, "roi.box_regression").Tensor().Clone(), true)
	l, err := FastRCNNLoss(g, logits, reg, labels, targets)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "loss_classifier", l.Classifier.Value.Data(), golden.Entry(t, f, "loss_classifier").F32Data, golden.Tol{Atol: 2e-6, RelL2: 2e-6})
	golden.Check(t, "loss_box_reg", l.BoxReg.Value.Data(), golden.Entry(t, f, "loss_box_reg").F32Data, golden.Tol{Atol: 1e-6, RelL2: 5e-6})
}

// TestFastRCNNLossGradient checks the analytic gradient of the summed
// losses against central differences, and that only the labelled class's
// columns of foreground rows get a box gradient.
func TestFastRCNNLossGradient(t *testing.T) {
	const r, c = 5, 3
	rng := rand.New(rand.NewSource(5))
	logits, reg := tensor.New(r, c), tensor.New(r, 4*c)
	gradcheck.FillNormal(rng, logits, reg)
	labels := []int{0, 2, 1, 0, 2}
	targets := make([]float32, 4*r)
	for i := range targets {
		targets[i] = float32(rng.NormFloat64() * 0.2)
	}
	eval := func() (float64, *tensor.Tensor, *tensor.Tensor) {
		g := nn.NewGraph()
		lv, rv := g.Leaf(logits.Clone(), true), g.Leaf(reg.Clone(), true)
		l, err := FastRCNNLoss(g, lv, rv, labels, targets)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := nn.Add(g, l.Classifier, l.BoxReg)
		if err := g.Backward(s); err != nil {
			t.Fatal(err)
		}
		return float64(s.Value.Data()[0]), lv.Grad, rv.Grad
	}
	_, gl, gr := eval()
	loss := func() float64 { v, _, _ := eval(); return v }
	gradcheck.Central(t, "logits", logits, gl, 1e-2, 2e-3, loss)
	gradcheck.Central(t, "box", reg, gr, 1e-2, 2e-3, loss)
	for i := range r {
		for col := range 4 * c {
			own := labels[i] > 0 && col/4 == labels[i]
			if !own && gr.Data()[i*4*c+col] != 0 {
				t.Errorf("row %d col %d (label %d) has box gradient", i, col, labels[i])
			}
		}
	}
}

func TestFastRCNNLossEdgeCases(t *testing.T) {
	g := nn.NewGraph()
	l, err := FastRCNNLoss(g, g.Leaf(tensor.New(2, 3), true), g.Leaf(tensor.New(2, 12), true), []int{0, 0}, make([]float32, 8))
	if err != nil {
		t.Fatal(err)
	}
	if v := l.BoxReg.Value.Data()[0]; v != 0 {
		t.Errorf("box loss without foreground = %v", v)
	}
	if v := l.Classifier.Value.Data()[0]; math.Abs(float64(v)-math.Log(3)) > 1e-6 {
		t.Errorf("uniform classifier loss = %v, want log 3", v)
	}
	cases := []struct {
		name    string
		ls, bs  []int
		labels  []int
		targets int
	}{
		{"box columns not 4C", []int{2, 3}, []int{2, 8}, []int{0, 0}, 8},
		{"rows differ", []int{2, 3}, []int{3, 12}, []int{0, 0}, 8},
		{"label out of range", []int{2, 3}, []int{2, 12}, []int{0, 3}, 8},
		{"negative label", []int{2, 3}, []int{2, 12}, []int{-1, 0}, 8},
		{"short labels", []int{2, 3}, []int{2, 12}, []int{0}, 8},
		{"short targets", []int{2, 3}, []int{2, 12}, []int{0, 1}, 4},
		{"no proposals", []int{0, 3}, []int{0, 12}, nil, 0},
	}
	for _, c := range cases {
		g := nn.NewGraph()
		_, err := FastRCNNLoss(g, g.Input(tensor.New(c.ls...)), g.Input(tensor.New(c.bs...)), c.labels, make([]float32, c.targets))
		if !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", c.name, err)
		}
	}
}

func TestHeadsKeysAndBadInput(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	h, err := NewTwoMLPHead(2*7*7, 16, rng)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewFastRCNNPredictor(16, 4, rng)
	if err != nil {
		t.Fatal(err)
	}
	sd := nn.NewStateDict()
	h.AddState(sd, "roi_heads.box_head.")
	p.AddState(sd, "roi_heads.box_predictor.")
	want := []string{"roi_heads.box_head.fc6.weight", "roi_heads.box_head.fc6.bias", "roi_heads.box_head.fc7.weight", "roi_heads.box_head.fc7.bias",
		"roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias", "roi_heads.box_predictor.bbox_pred.weight", "roi_heads.box_predictor.bbox_pred.bias"}
	for i, k := range want {
		if i >= len(sd.Keys) || sd.Keys[i] != k {
			t.Fatalf("keys %v, want %v", sd.Keys, want)
		}
	}
	if len(h.Params()) != 4 || len(p.Params()) != 4 || p.NumClasses() != 4 {
		t.Error("parameter counts")
	}
	g := nn.NewGraph()
	x, err := h.Forward(g, g.Input(tensor.New(3, 2, 7, 7)))
	if err != nil || x.Shape()[0] != 3 || x.Shape()[1] != 16 {
		t.Fatalf("head forward: %v %v", x, err)
	}
	cl, br, err := p.Forward(g, x)
	if err != nil || cl.Shape()[1] != 4 || br.Shape()[1] != 16 {
		t.Fatalf("predictor forward: %v", err)
	}
	if _, err := h.Forward(g, g.Input(tensor.New(3, 3, 7, 7))); !errors.Is(err, ErrInput) {
		t.Errorf("wrong channels: %v", err)
	}
	if _, _, err := p.Forward(g, g.Input(tensor.New(3, 15))); !errors.Is(err, ErrInput) {
		t.Errorf("wrong width: %v", err)
	}
	for _, c := range []struct{ in, out int }{{0, 4}, {4, 0}} {
		if _, err := NewTwoMLPHead(c.in, c.out, rng); !errors.Is(err, ErrInput) {
			t.Errorf("NewTwoMLPHead(%d, %d): %v", c.in, c.out, err)
		}
	}
	if _, err := NewFastRCNNPredictor(4, 1, rng); !errors.Is(err, ErrInput) {
		t.Errorf("one class: %v", err)
	}
	var bh BoxHead = BoxHeadFunc(func(g *nn.Graph, x *nn.Var) (*nn.Var, error) { return nn.Reshape(g, x, x.Shape()[0], -1) })
	var pr Predictor = PredictorFunc(func(g *nn.Graph, x *nn.Var) (*nn.Var, *nn.Var, error) { return x, x, nil })
	if bh.Params() != nil || pr.Params() != nil {
		t.Error("func adapters have parameters")
	}
	if y, err := bh.Forward(g, g.Input(tensor.New(2, 3, 7, 7))); err != nil || y.Shape()[1] != 147 {
		t.Errorf("BoxHeadFunc: %v", err)
	}
}
