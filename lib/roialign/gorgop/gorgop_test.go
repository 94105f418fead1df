package gorgop

import (
	"errors"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/roialign"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestGoldenGraph builds loss = sum(RoIAlign(features, rois) * grad_output)
// in a gorgonia graph, differentiates it with gorgonia's Grad, runs a
// TapeMachine and compares the output and d(loss)/d(features) with
// torchvision's (roi_align.safetensors; tolerances from the golden README).
func TestGoldenGraph(t *testing.T) {
	f := golden.Load(t, "roi_align.safetensors")
	feat := golden.Entry(t, f, "features").Tensor()
	rois := golden.Entry(t, f, "rois").Tensor()
	want := golden.Entry(t, f, "output").Tensor()
	gout := golden.Entry(t, f, "grad_output").Tensor()
	wantGrad := golden.Entry(t, f, "grad_features").Tensor()
	cfg := roialign.Defaults(1.0 / 32) // the golden call's spatial_scale
	cfg.OutH, cfg.OutW = want.Dim(2), want.Dim(3)

	g := G.NewGraph()
	fn := G.NewTensor(g, tensor.Float32, 4, G.WithShape(feat.Shape()...), G.WithName("features"), G.WithValue(feat.ToDense()))
	rn := G.NewTensor(g, tensor.Float32, 2, G.WithShape(rois.Shape()...), G.WithName("rois"), G.WithValue(rois.ToDense()))
	gn := G.NewTensor(g, tensor.Float32, 4, G.WithShape(gout.Shape()...), G.WithName("grad_output"), G.WithValue(gout.ToDense()))
	out, err := RoIAlign(fn, rn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	loss := G.Must(G.Sum(G.Must(G.HadamardProd(out, gn))))
	grads, err := G.Grad(loss, fn)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	for run := 0; run < 2; run++ { // a reused machine gives the same answer
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		golden.CheckShape(t, "output", out.Shape(), want.Shape())
		golden.Check(t, "output", out.Value().Data().([]float32), want.Data(), golden.Tol{Atol: 5e-5, RelL2: 1e-5})
		golden.CheckShape(t, "grad_features", grads[0].Shape(), wantGrad.Shape())
		golden.Check(t, "grad_features", grads[0].Value().Data().([]float32), wantGrad.Data(), golden.Tol{Atol: 1e-4, RelL2: 1e-5})
		m.Reset()
	}
}

func TestBadNodes(t *testing.T) {
	g := G.NewGraph()
	f4 := G.NewTensor(g, tensor.Float32, 4, G.WithShape(1, 2, 3, 3), G.WithName("f"))
	f3 := G.NewTensor(g, tensor.Float32, 3, G.WithShape(2, 3, 3), G.WithName("f3"))
	f64 := G.NewTensor(g, tensor.Float64, 4, G.WithShape(1, 2, 3, 3), G.WithName("f64"))
	r := G.NewMatrix(g, tensor.Float32, G.WithShape(4, 5), G.WithName("r"))
	r4 := G.NewMatrix(g, tensor.Float32, G.WithShape(4, 4), G.WithName("r4"))
	cases := []struct {
		name     string
		features *G.Node
		rois     *G.Node
		cfg      roialign.Config
	}{
		{"3-D features", f3, r, roialign.Defaults(1)},
		{"rois (K,4)", f4, r4, roialign.Defaults(1)},
		{"float64 features", f64, r, roialign.Defaults(1)},
		{"zero scale", f4, r, roialign.Defaults(0)},
		{"nil rois", f4, nil, roialign.Defaults(1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := RoIAlign(tc.features, tc.rois, tc.cfg); !errors.Is(err, roialign.ErrInput) {
				t.Fatalf("err = %v, want roialign.ErrInput", err)
			}
		})
	}
}
