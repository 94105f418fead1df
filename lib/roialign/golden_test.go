package roialign

import (
	"strconv"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/tensor"
)

// goldenSpatialScale is the spatial_scale of the roi_align call that made
// roi_align.safetensors' output (see the golden README).
const goldenSpatialScale = 1.0 / 32

// Tolerances from the golden README's roi_align.safetensors table.
var (
	tolOutput = golden.Tol{Atol: 5e-5, RelL2: 1e-5}
	tolGrad   = golden.Tol{Atol: 1e-4, RelL2: 1e-5}
)

type roiGolden struct {
	features, rois, output, gradOutput, gradFeatures, msraOutput *tensor.Tensor
	imageShapes                                                  [][2]int
	msraScale                                                    float32
	cfg                                                          Config
}

func loadGolden(t *testing.T) roiGolden {
	t.Helper()
	f := golden.Load(t, "roi_align.safetensors")
	get := func(name string) *tensor.Tensor { return golden.Entry(t, f, name).Tensor() }
	g := roiGolden{
		features:     get("features"),
		rois:         get("rois"),
		output:       get("output"),
		gradOutput:   get("grad_output"),
		gradFeatures: get("grad_features"),
		msraOutput:   get("msra_output"),
	}
	sh := golden.Entry(t, f, "msra_image_shapes")
	for i := 0; i+1 < len(sh.I64Data); i += 2 {
		g.imageShapes = append(g.imageShapes, [2]int{int(sh.I64Data[i]), int(sh.I64Data[i+1])})
	}
	sc, err := strconv.ParseFloat(f.Metadata["msra_inferred_scale"], 64)
	if err != nil {
		t.Fatalf("metadata msra_inferred_scale: %v", err)
	}
	g.msraScale = float32(sc)
	out := g.output.Shape()
	g.cfg = Config{OutH: out[2], OutW: out[3], SamplingRatio: 2, SpatialScale: goldenSpatialScale}
	return g
}

func TestGoldenForward(t *testing.T) {
	g := loadGolden(t)
	got, err := Forward(g.features, g.rois, g.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if golden.CheckShape(t, "output", got.Shape(), g.output.Shape()) {
		golden.Check(t, "output", got.Data(), g.output.Data(), tolOutput)
	}
}

func TestGoldenBackward(t *testing.T) {
	g := loadGolden(t)
	got, err := Backward(g.gradOutput, g.rois, g.features.Shape(), g.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if golden.CheckShape(t, "grad_features", got.Shape(), g.gradFeatures.Shape()) {
		golden.Check(t, "grad_features", got.Data(), g.gradFeatures.Data(), tolGrad)
	}
}

func TestGoldenMultiScale(t *testing.T) {
	g := loadGolden(t)
	n := g.features.Dim(0)
	boxes := make([][]float32, n)
	r := g.rois.Data()
	for i := 0; i+5 <= len(r); i += 5 {
		b := int(r[i])
		boxes[b] = append(boxes[b], r[i+1:i+5]...)
	}
	m := NewMultiScale(g.output.Dim(2), 2)
	if _, ok := m.Scale(); ok {
		t.Fatal("scale inferred before the first Forward")
	}
	got, err := m.Forward(g.features, boxes, g.imageShapes)
	if err != nil {
		t.Fatal(err)
	}
	if sc, ok := m.Scale(); !ok || sc != g.msraScale {
		t.Fatalf("inferred scale %v (%v), want %v", sc, ok, g.msraScale)
	}
	if golden.CheckShape(t, "msra_output", got.Shape(), g.msraOutput.Shape()) {
		golden.Check(t, "msra_output", got.Data(), g.msraOutput.Data(), tolOutput)
	}
	// The scale is cached: a call with other image sizes keeps it.
	if _, err := m.Forward(g.features, boxes, [][2]int{{1, 1}}); err != nil {
		t.Fatal(err)
	}
	if sc, _ := m.Scale(); sc != g.msraScale {
		t.Fatalf("scale changed to %v after a second call; torchvision caches it", sc)
	}
}
