package fasterrcnn

import (
	"strconv"
	"strings"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/roi"
)

// TestGoldenTrainBoxHeadStage runs the box head of frcnn_train on the
// reference train-mode features and the reference sampled proposals,
// labels and targets: the head outputs, the two box-head losses and the
// gradients of the box-head parameters (which the RPN losses do not reach)
// must match on their own, without the backbone's float32 error.
func TestGoldenTrainBoxHeadStage(t *testing.T) {
	f := golden.Load(t, "frcnn_train.safetensors")
	m := goldenModel(t, f)
	ef := golden.Load(t, "frcnn_eval.safetensors")
	il := goldenImageList(t, ef)
	g := nn.NewGraph()
	feats := g.Input(golden.Entry(t, f, "backbone.features").Tensor())
	var props [][]box.Box
	var labels []int
	var targets []float32
	for i := 0; golden.Has(f, "roi.proposals."+strconv.Itoa(i)); i++ {
		s := strconv.Itoa(i)
		b, err := box.FromTensor(golden.Entry(t, f, "roi.proposals."+s).Tensor())
		if err != nil {
			t.Fatal(err)
		}
		props = append(props, b)
		for _, v := range golden.Entry(t, f, "roi.labels."+s).I64Data {
			labels = append(labels, int(v))
		}
		targets = append(targets, golden.Entry(t, f, "roi.regression_targets."+s).F32Data...)
	}
	logits, reg, err := m.boxHeads(g, feats, props, il)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "roi.class_logits", logits.Value.Data(), golden.Entry(t, f, "roi.class_logits").F32Data, golden.Tol{Atol: 1e-4})
	golden.Check(t, "roi.box_regression", reg.Value.Data(), golden.Entry(t, f, "roi.box_regression").F32Data, golden.Tol{Atol: 5e-6})
	l, err := roi.FastRCNNLoss(g, logits, reg, labels, targets)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "loss_classifier", l.Classifier.Value.Data(), golden.Entry(t, f, "loss_classifier").F32Data, golden.Tol{Atol: 2e-6, RelL2: 2e-6})
	golden.Check(t, "loss_box_reg", l.BoxReg.Value.Data(), golden.Entry(t, f, "loss_box_reg").F32Data, golden.Tol{Atol: 1e-6, RelL2: 5e-6})
	sum, err := nn.Add(g, l.Classifier, l.BoxReg)
	if err != nil {
		t.Fatal(err)
	}
	m.ZeroGrad()
	if err := g.Backward(sum); err != nil {
		t.Fatal(err)
	}
	sd := m.StateDict()
	for _, name := range f.Names {
		key, ok := strings.CutPrefix(name, "grad.")
		if !ok || !strings.HasPrefix(key, "roi_heads.") {
			continue
		}
		p := sd.Param(key)
		if p == nil || p.Grad == nil {
			t.Errorf("%s: no such parameter or no gradient", name)
			continue
		}
		ref := golden.Entry(t, f, name)
		tol, ok := gradTol[name]
		if !ok {
			tol = golden.Tol{Atol: 1e-6, RelL2: 1e-4}
		}
		golden.Check(t, name+" (stage)", p.Grad.Data()[:len(ref.F32Data)], ref.F32Data, tol)
	}
}

// TestGoldenTrainFeatures checks the train-mode backbone (batch statistics
// over both images, padding included) on the reference batch.
func TestGoldenTrainFeatures(t *testing.T) {
	f := golden.Load(t, "frcnn_train.safetensors")
	m := goldenModel(t, f)
	m.Train()
	g := nn.NewGraph()
	feats, err := m.features(g, golden.Entry(t, f, "transform.batch").Tensor())
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "backbone.features (train)", feats.Value.Data(), golden.Entry(t, f, "backbone.features").F32Data, golden.Tol{Atol: 1e-3, RelL2: 5e-5})
}
