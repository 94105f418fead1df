package rpn

import (
	"errors"
	"math"
	"math/rand"
	"strconv"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/internal/gradcheck"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/weights"
)

// TestGoldenHead runs the default head with frcnn_weights on the reference
// eval features and compares with rpn.objectness and rpn.bbox_deltas.
func TestGoldenHead(t *testing.T) {
	wf := golden.Load(t, "frcnn_weights.safetensors")
	ef := golden.Load(t, "frcnn_eval.safetensors")
	cls := golden.Entry(t, wf, "rpn.head.cls_logits.weight").Shape
	h, err := NewConvHead(cls[1], cls[0], rand.New(rand.NewSource(1)))
	if err != nil {
		t.Fatal(err)
	}
	sd := nn.NewStateDict()
	h.AddState(sd, "rpn.head.")
	if _, err := weights.Load(sd.Tensors, wf, weights.LoadOptions{AllowUnexpected: true}); err != nil {
		t.Fatal(err)
	}
	g := nn.NewInferenceGraph()
	obj, del, err := h.Forward(g, g.Input(golden.Entry(t, ef, "backbone.features").Tensor()))
	if err != nil {
		t.Fatal(err)
	}
	golden.CheckShape(t, "rpn.objectness", obj.Shape(), golden.Entry(t, ef, "rpn.objectness").Shape)
	golden.Check(t, "rpn.objectness", obj.Value.Data(), golden.Entry(t, ef, "rpn.objectness").F32Data, golden.Tol{Atol: 5e-5, RelL2: 5e-5})
	golden.Check(t, "rpn.bbox_deltas", del.Value.Data(), golden.Entry(t, ef, "rpn.bbox_deltas").F32Data, golden.Tol{Atol: 5e-5, RelL2: 2e-5})
}

func TestConvHeadInitAndKeys(t *testing.T) {
	h, err := NewConvHead(8, 3, rand.New(rand.NewSource(7)))
	if err != nil {
		t.Fatal(err)
	}
	sd := nn.NewStateDict()
	h.AddState(sd, "rpn.head.")
	want := []string{"rpn.head.conv.0.0.weight", "rpn.head.conv.0.0.bias", "rpn.head.cls_logits.weight", "rpn.head.cls_logits.bias", "rpn.head.bbox_pred.weight", "rpn.head.bbox_pred.bias"}
	if len(sd.Keys) != len(want) {
		t.Fatalf("keys %v, want %v", sd.Keys, want)
	}
	for i, k := range want {
		if sd.Keys[i] != k {
			t.Errorf("key %d = %q, want %q", i, sd.Keys[i], k)
		}
	}
	if len(h.Params()) != 6 || h.NumAnchors() != 3 {
		t.Errorf("%d params, %d anchors", len(h.Params()), h.NumAnchors())
	}
	w := h.Conv.Weight.Value.Data()
	var s, s2 float64
	for _, v := range w {
		s += float64(v)
		s2 += float64(v) * float64(v)
	}
	std := math.Sqrt(s2/float64(len(w)) - (s/float64(len(w)))*(s/float64(len(w))))
	if std < 0.008 || std > 0.012 {
		t.Errorf("conv weight std %v, want about 0.01", std)
	}
	for _, c := range []*nn.Conv2d{h.Conv, h.ClsLogits, h.BBoxPred} {
		for _, v := range c.Bias.Value.Data() {
			if v != 0 {
				t.Fatalf("%s bias %v, want 0", c.Bias.Name, v)
			}
		}
	}
	if s := h.BBoxPred.Weight.Value.Shape(); s[0] != 12 || s[1] != 8 {
		t.Errorf("bbox_pred weight %v", s)
	}
}

func TestConvHeadBadInput(t *testing.T) {
	for _, c := range []struct{ in, a int }{{0, 3}, {8, 0}, {-1, -1}} {
		if _, err := NewConvHead(c.in, c.a, rand.New(rand.NewSource(1))); !errors.Is(err, ErrInput) {
			t.Errorf("NewConvHead(%d, %d): err = %v", c.in, c.a, err)
		}
	}
	if _, err := NewConvHead(4, 3, nil); !errors.Is(err, ErrInput) {
		t.Errorf("nil rng: err = %v", err)
	}
	h, _ := NewConvHead(4, 3, rand.New(rand.NewSource(1)))
	g := nn.NewInferenceGraph()
	for _, s := range [][]int{{1, 5, 4, 4}, {4, 4, 4}} {
		if _, _, err := h.Forward(g, g.Input(tensor.New(s...))); !errors.Is(err, ErrInput) {
			t.Errorf("features %v: err = %v", s, err)
		}
	}
	if _, _, err := h.Forward(g, nil); !errors.Is(err, ErrInput) {
		t.Errorf("nil features: err = %v", err)
	}
}

// TestHeadFunc checks the adapter and that the graph differentiates
// through a head written as a function.
func TestHeadFunc(t *testing.T) {
	var head Head = HeadFunc(func(g *nn.Graph, f *nn.Var) (*nn.Var, *nn.Var, error) {
		d, err := nn.Reshape(g, nn.MulScalar(g, f, 2), f.Shape()[0], 4, f.Shape()[2], f.Shape()[3])
		return f, d, err
	})
	if head.Params() != nil {
		t.Error("HeadFunc has parameters")
	}
	sd := nn.NewStateDict()
	head.AddState(sd, "rpn.head.")
	if sd.Len() != 0 {
		t.Error("HeadFunc added state")
	}
	g := nn.NewGraph()
	x := g.Leaf(tensor.New(1, 4, 2, 2), true)
	o, d, err := head.Forward(g, x)
	if err != nil || o != x || d.Shape()[1] != 4 {
		t.Fatalf("forward: %v", err)
	}
}

// TestGoldenLoss computes the RPN losses from the train fixture's head
// outputs and anchor labels (every labelled anchor is sampled there).
func TestGoldenLoss(t *testing.T) {
	f := golden.Load(t, "frcnn_train.safetensors")
	cfg := Defaults()
	bs, err := strconv.Atoi(f.Metadata["rpn_batch_size_per_image"])
	if err != nil {
		t.Fatalf("metadata rpn_batch_size_per_image: %v", err)
	}
	cfg.BatchSizePerImage = bs
	objT := golden.Entry(t, f, "rpn.objectness").Tensor()
	n := objT.Shape()[0]
	rng := rand.New(rand.NewSource(0))
	var targets []AnchorTargets
	var pos, neg [][]int
	for i := range n {
		lab := golden.Entry(t, f, "rpn.labels."+strconv.Itoa(i)).F32Data
		at := AnchorTargets{Labels: make([]int, len(lab)), RegressionTargets: golden.Entry(t, f, "rpn.regression_targets."+strconv.Itoa(i)).F32Data}
		for j, v := range lab {
			at.Labels[j] = int(v)
		}
		p, q, err := SampleAnchors(at.Labels, cfg, rng)
		if err != nil {
			t.Fatal(err)
		}
		targets, pos, neg = append(targets, at), append(pos, p), append(neg, q)
	}
	g := nn.NewGraph()
	obj := g.Leaf(objT.Clone(), true)
	del := g.Leaf(golden.Entry(t, f, "rpn.bbox_deltas").Tensor().Clone(), true)
	l, err := ComputeLoss(g, obj, del, targets, pos, neg)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "loss_objectness", l.Objectness.Value.Data(), golden.Entry(t, f, "loss_objectness").F32Data, golden.Tol{Atol: 1e-5, RelL2: 1e-6})
	golden.Check(t, "loss_rpn_box_reg", l.BoxReg.Value.Data(), golden.Entry(t, f, "loss_rpn_box_reg").F32Data, golden.Tol{Atol: 1e-7, RelL2: 2e-6})
	sum, _ := nn.Add(g, l.Objectness, l.BoxReg)
	if err := g.Backward(sum); err != nil {
		t.Fatal(err)
	}
	if obj.Grad == nil || del.Grad == nil {
		t.Fatal("no gradient reached the head outputs")
	}
}

// TestLossGradient compares the analytic gradient of the summed RPN losses
// with central differences in float64 on a tiny problem, and checks that
// only sampled anchors (and only positives for the box loss) get gradient.
func TestLossGradient(t *testing.T) {
	const n, a, h, w = 2, 2, 2, 3
	per := a * h * w
	rng := rand.New(rand.NewSource(3))
	obj := tensor.New(n, a, h, w)
	del := tensor.New(n, 4*a, h, w)
	gradcheck.FillNormal(rng, obj, del)
	targets := make([]AnchorTargets, n)
	for i := range targets {
		targets[i] = AnchorTargets{Labels: make([]int, per), RegressionTargets: make([]float32, 4*per)}
		for j := range targets[i].RegressionTargets {
			targets[i].RegressionTargets[j] = float32(rng.NormFloat64() * 0.3)
		}
	}
	pos := [][]int{{1, 7}, {}}
	neg := [][]int{{0, 4, 11}, {2, 3}}
	eval := func() (float64, *tensor.Tensor, *tensor.Tensor) {
		g := nn.NewGraph()
		o, d := g.Leaf(obj.Clone(), true), g.Leaf(del.Clone(), true)
		l, err := ComputeLoss(g, o, d, targets, pos, neg)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := nn.Add(g, l.Objectness, l.BoxReg)
		if err := g.Backward(s); err != nil {
			t.Fatal(err)
		}
		return float64(s.Value.Data()[0]), o.Grad, d.Grad
	}
	_, go_, gd := eval()
	loss := func() float64 { v, _, _ := eval(); return v }
	gradcheck.Central(t, "objectness", obj, go_, 1e-2, 2e-3, loss)
	gradcheck.Central(t, "deltas", del, gd, 1e-2, 2e-3, loss)
	// Image 1 has no positive: none of its deltas get gradient.
	for i := 4 * per; i < 8*per; i++ {
		if gd.Data()[i] != 0 {
			t.Fatalf("delta %d of an image without positives has gradient %v", i, gd.Data()[i])
		}
	}
}

func TestLossNoPositivesAndBadInput(t *testing.T) {
	const a, h, w = 1, 2, 2
	per := a * h * w
	tg := []AnchorTargets{{Labels: make([]int, per), RegressionTargets: make([]float32, 4*per)}}
	for i := range tg[0].RegressionTargets {
		tg[0].RegressionTargets[i] = float32(math.Inf(-1)) // as for an image without GT
	}
	g := nn.NewGraph()
	o := g.Leaf(tensor.New(1, a, h, w), true)
	d := g.Leaf(tensor.New(1, 4*a, h, w), true)
	l, err := ComputeLoss(g, o, d, tg, [][]int{{}}, [][]int{{0, 1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if v := l.BoxReg.Value.Data()[0]; v != 0 {
		t.Errorf("box loss without positives = %v, want 0", v)
	}
	if v := l.Objectness.Value.Data()[0]; math.Abs(float64(v)-math.Log(2)) > 1e-6 {
		t.Errorf("objectness loss at logit 0 = %v, want log 2", v)
	}
	cases := []struct {
		name     string
		o, d     []int
		tg       []AnchorTargets
		pos, neg [][]int
	}{
		{"deltas not 4A", []int{1, a, h, w}, []int{1, 3, h, w}, tg, [][]int{{}}, [][]int{{0}}},
		{"3-D objectness", []int{a, h, w}, []int{4, h, w}, tg, [][]int{{}}, [][]int{{0}}},
		{"missing image", []int{1, a, h, w}, []int{1, 4, h, w}, nil, nil, nil},
		{"anchor out of range", []int{1, a, h, w}, []int{1, 4, h, w}, tg, [][]int{{per}}, [][]int{{0}}},
		{"targets for other anchors", []int{1, a, h, w}, []int{1, 4, h, w}, []AnchorTargets{{Labels: []int{0}, RegressionTargets: make([]float32, 4)}}, [][]int{{}}, [][]int{{0}}},
		{"nothing sampled", []int{1, a, h, w}, []int{1, 4, h, w}, tg, [][]int{{}}, [][]int{{}}},
	}
	for _, c := range cases {
		g := nn.NewGraph()
		_, err := ComputeLoss(g, g.Input(tensor.New(c.o...)), g.Input(tensor.New(c.d...)), c.tg, c.pos, c.neg)
		if !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", c.name, err)
		}
	}
}
