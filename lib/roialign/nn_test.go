package roialign

import (
	"errors"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// TestGoldenApply runs RoIAlign as a graph op and differentiates
// sum(output * grad_output): the feature gradient must be torchvision's.
func TestGoldenApply(t *testing.T) {
	gd := loadGolden(t)
	g := nn.NewGraph()
	feats := g.Leaf(gd.features.Clone(), true)
	out, err := Apply(g, feats, gd.rois, gd.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if golden.CheckShape(t, "output", out.Shape(), gd.output.Shape()) {
		golden.Check(t, "output", out.Value.Data(), gd.output.Data(), tolOutput)
	}
	prod, err := nn.Mul(g, out, g.Input(gd.gradOutput))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Backward(nn.Sum(g, prod)); err != nil {
		t.Fatal(err)
	}
	if feats.Grad == nil {
		t.Fatal("no gradient reached the features")
	}
	golden.Check(t, "grad_features", feats.Grad.Data(), gd.gradFeatures.Data(), tolGrad)
}

// TestGoldenMultiScaleApply checks the per-image box form with scale
// inference against msra_output, on an inference graph.
func TestGoldenMultiScaleApply(t *testing.T) {
	gd := loadGolden(t)
	boxes := make([][]float32, gd.features.Shape()[0])
	r := gd.rois.Data()
	for i := 0; i+5 <= len(r); i += 5 {
		b := int(r[i])
		boxes[b] = append(boxes[b], r[i+1:i+5]...)
	}
	m := NewMultiScale(gd.cfg.OutH, gd.cfg.SamplingRatio)
	g := nn.NewInferenceGraph()
	out, err := m.Apply(g, g.Input(gd.features), boxes, gd.imageShapes)
	if err != nil {
		t.Fatal(err)
	}
	if sc, ok := m.Scale(); !ok || sc != gd.msraScale {
		t.Errorf("scale %v (inferred %v), want %v", sc, ok, gd.msraScale)
	}
	golden.Check(t, "msra_output", out.Value.Data(), gd.msraOutput.Data(), tolOutput)
}

// TestApplyAccumulates checks that two uses of one feature map add their
// gradients, and that an empty roi set is a valid (K=0) op.
func TestApplyAccumulates(t *testing.T) {
	feat := tensor.New(1, 2, 4, 4)
	for i := range feat.Data() {
		feat.Data()[i] = float32(i%7) - 3
	}
	rois := tensor.MustFromSlice([]float32{0, 0, 0, 40, 40, 0, 8, 8, 100, 64}, 2, 5)
	cfg := Defaults(1.0 / 16)
	once := func(n int) []float32 {
		g := nn.NewGraph()
		x := g.Leaf(feat.Clone(), true)
		var loss *nn.Var
		for range n {
			y, err := Apply(g, x, rois, cfg)
			if err != nil {
				t.Fatal(err)
			}
			s := nn.Sum(g, y)
			if loss == nil {
				loss = s
			} else if loss, err = nn.Add(g, loss, s); err != nil {
				t.Fatal(err)
			}
		}
		if err := g.Backward(loss); err != nil {
			t.Fatal(err)
		}
		return x.Grad.Data()
	}
	g1, g2 := once(1), once(2)
	for i := range g1 {
		if d := g2[i] - 2*g1[i]; d > 1e-5 || d < -1e-5 || (g1[i] == 0) != (g2[i] == 0) {
			t.Fatalf("grad[%d] = %v with two uses, want %v", i, g2[i], 2*g1[i])
		}
	}
	g := nn.NewGraph()
	y, err := Apply(g, g.Leaf(feat, true), tensor.New(0, 5), cfg)
	if err != nil {
		t.Fatalf("empty rois: %v", err)
	}
	if s := y.Shape(); s[0] != 0 || s[1] != 2 || s[2] != 7 || s[3] != 7 {
		t.Errorf("empty rois: shape %v", s)
	}
}

func TestApplyBadInput(t *testing.T) {
	feat := tensor.New(1, 2, 4, 4)
	good := tensor.MustFromSlice([]float32{0, 0, 0, 8, 8}, 1, 5)
	nan := float32(0)
	nan = nan / nan
	cases := []struct {
		name  string
		feat  *tensor.Tensor
		rois  *tensor.Tensor
		cfg   Config
		boxes bool
	}{
		{"3-D features", tensor.New(2, 4, 4), good, Defaults(1), false},
		{"rois not (K,5)", feat, tensor.New(2, 4), Defaults(1), false},
		{"batch index out of range", feat, tensor.MustFromSlice([]float32{1, 0, 0, 8, 8}, 1, 5), Defaults(1), false},
		{"NaN roi", feat, tensor.MustFromSlice([]float32{0, nan, 0, 8, 8}, 1, 5), Defaults(1), false},
		{"zero scale", feat, good, Defaults(0), false},
		{"nil rois", feat, nil, Defaults(1), false},
	}
	for _, c := range cases {
		g := nn.NewGraph()
		_, err := Apply(g, g.Input(c.feat), c.rois, c.cfg)
		if !errors.Is(err, ErrInput) {
			t.Errorf("%s: err = %v, want ErrInput", c.name, err)
		}
	}
	m := NewMultiScale(7, 2)
	g := nn.NewGraph()
	if _, err := m.Apply(g, g.Input(feat), [][]float32{{0, 0, 1, 1}, {0, 0, 1, 1}}, [][2]int{{64, 64}}); !errors.Is(err, ErrInput) {
		t.Errorf("box lists for 2 images on a batch of 1: err = %v", err)
	}
	if _, err := m.Apply(g, g.Input(feat), [][]float32{{0, 0, 1}}, [][2]int{{64, 64}}); !errors.Is(err, ErrInput) {
		t.Errorf("3 box values: err = %v", err)
	}
	if _, err := m.Apply(g, g.Input(feat), [][]float32{{0, 0, 1, 1}}, [][2]int{{0, 64}}); !errors.Is(err, ErrInput) {
		t.Errorf("zero image size: err = %v", err)
	}
}
