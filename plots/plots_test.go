package plots

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/anchor"
	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/eval"
	"github.com/detlab/detlab/lib/fasterrcnn"
	"github.com/detlab/detlab/lib/train"
)

// outDir is where figures are written: $PLOTS_OUT to look at them, else a
// temporary directory.
func outDir(t *testing.T) string {
	if d := os.Getenv("PLOTS_OUT"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// synthHistory is a decaying noisy run with a skipped AMP step and a
// learning-rate drop.
func synthHistory(n int, seed float64) *train.History {
	h := &train.History{}
	scale := 65536.0
	for i := 0; i < n; i++ {
		noise := 0.15 * math.Sin(float64(i)*1.7+seed) * math.Cos(float64(i)*0.37)
		f := math.Exp(-float64(i)/float64(n)*2) + 0.1
		l := map[string]float32{
			"loss_objectness":  float32(0.3*f + 0.05*noise),
			"loss_rpn_box_reg": float32(0.1*f + 0.02*noise),
			"loss_classifier":  float32(0.8*f + 0.1*noise),
			"loss_box_reg":     float32(0.4*f*(1+seed/10) + 0.05*noise),
		}
		var tot float32
		for _, v := range l {
			tot += v
		}
		l["loss"] = tot
		r := train.Record{Step: i, Losses: l, LR: 0.005, Scale: scale, GradNorm: 3}
		if i >= n*2/3 {
			r.LR = 0.0005
		}
		if i == n/2 {
			r.Skipped, r.SkipReason, r.GradNorm = true, "inf", math.Inf(1)
			scale /= 2
		}
		h.Records = append(h.Records, r)
	}
	return h
}

// checkFigure renders f as PNG and SVG (and saves PNG, SVG and PDF).
func checkFigure(t *testing.T, name string, f *Figure, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	b := f.PNG()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: PNG does not decode: %v", name, err)
	}
	wantW := int(math.Ceil(f.Width.Points() / 72 * float64(DPI)))
	if d := img.Bounds().Dx() - wantW; d < -1 || d > 1 {
		t.Errorf("%s: PNG width %d, want %d", name, img.Bounds().Dx(), wantW)
	}
	if s := f.SVG(); !strings.Contains(s, "<svg") || !strings.Contains(s, f.Plot.Title.Text[:min(5, len(f.Plot.Title.Text))]) {
		t.Errorf("%s: SVG lacks the svg element or the title", name)
	}
	if nonWhite(img) < 1000 {
		t.Errorf("%s: PNG is nearly blank", name)
	}
	dir := outDir(t)
	for _, ext := range []string{".png", ".svg", ".pdf"} {
		if err := f.Save(filepath.Join(dir, name+ext)); err != nil {
			t.Errorf("%s: save %s: %v", name, ext, err)
		}
	}
}

func nonWhite(img image.Image) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			if r < 0xf000 || g < 0xf000 || bb < 0xf000 {
				n++
			}
		}
	}
	return n
}

func TestHistoryFigures(t *testing.T) {
	h := synthHistory(300, 0)
	f, err := Losses(h)
	checkFigure(t, "losses", f, err)
	o := DefaultLossOptions()
	o.LogY = true
	f, err = LossesWith(h, o)
	checkFigure(t, "losses_log", f, err)
	f, err = LearningRate(h)
	checkFigure(t, "lr", f, err)
	f, err = LossScale(h)
	checkFigure(t, "scale", f, err)
	f, err = Compare([]string{"TwoMLPHead", "wider head"}, []*train.History{h, synthHistory(250, 4)}, "loss")
	checkFigure(t, "compare", f, err)
}

func TestHistoryBadInput(t *testing.T) {
	nan := &train.History{Records: []train.Record{{Losses: map[string]float32{"loss": float32(math.NaN())}, LR: math.NaN()}}}
	withNaN := synthHistory(20, 0)
	withNaN.Records[3].Losses["loss"] = float32(math.NaN())
	withNaN.Records[4].Losses["loss_classifier"] = float32(math.Inf(1))
	if _, err := Losses(withNaN); err != nil {
		t.Errorf("a NaN among finite losses should be skipped, got %v", err)
	}
	bad := DefaultLossOptions()
	bad.Smoothing = 1
	cases := []struct {
		name string
		fn   func() (*Figure, error)
	}{
		{"losses nil", func() (*Figure, error) { return Losses(nil) }},
		{"losses empty", func() (*Figure, error) { return Losses(&train.History{}) }},
		{"losses all NaN", func() (*Figure, error) { return Losses(nan) }},
		{"smoothing 1", func() (*Figure, error) { return LossesWith(withNaN, bad) }},
		{"lr empty", func() (*Figure, error) { return LearningRate(&train.History{}) }},
		{"lr NaN", func() (*Figure, error) { return LearningRate(nan) }},
		{"scale empty", func() (*Figure, error) { return LossScale(nil) }},
		{"compare none", func() (*Figure, error) { return Compare(nil, nil, "") }},
		{"compare names", func() (*Figure, error) { return Compare([]string{"a"}, []*train.History{withNaN, withNaN}, "") }},
		{"compare empty run", func() (*Figure, error) { return Compare([]string{"a"}, []*train.History{{}}, "") }},
		{"grad norms none", func() (*Figure, error) { return GradNorms(nil) }},
		{"coverage none", func() (*Figure, error) { return AnchorCoverage(&anchor.Coverage{}) }},
		{"pr nil", func() (*Figure, error) { return PR(nil, 0.5) }},
	}
	for _, c := range cases {
		if _, err := c.fn(); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err %v, want ErrInput", c.name, err)
		}
	}
	f, _ := Losses(withNaN)
	if _, err := f.Render("gif"); !errors.Is(err, ErrInput) {
		t.Errorf("render gif: %v", err)
	}
	f.Width = 0
	if err := f.Save(filepath.Join(t.TempDir(), "x.png")); !errors.Is(err, ErrInput) {
		t.Errorf("zero width: %v", err)
	}
}

func TestSmooth(t *testing.T) {
	got := Smooth([]float64{1, 1, math.NaN(), 1, 3}, 0.5)
	// Debiased EMA of a constant is the constant; NaN passes through.
	for i, w := range []float64{1, 1, math.NaN(), 1, 0.5 * (0.125 + 0.25 + 0.5 + 3) / (1 - 0.0625)} {
		if math.IsNaN(w) != math.IsNaN(got[i]) || (!math.IsNaN(w) && math.Abs(got[i]-w) > 1e-12) {
			t.Errorf("Smooth[%d] = %v, want %v", i, got[i], w)
		}
	}
}

func testImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetRGBA(x, y, color.RGBA{uint8(200 + x%40), uint8(210 + y%30), 225, 255})
		}
	}
	return img
}

func TestDetections(t *testing.T) {
	img := testImage(640, 480)
	det := fasterrcnn.Detections{
		Boxes:  []box.Box{{X1: 100, Y1: 100, X2: 220, Y2: 200}, {X1: 300, Y1: 50, X2: 380, Y2: 150}, {X1: 600, Y1: 400, X2: 700, Y2: 520}, {X1: 700, Y1: 10, X2: 800, Y2: 20}},
		Scores: []float32{0.97, 0.55, 0.8, 0.9},
		Labels: []int{1, 2, 3, 1},
	}
	gt := []box.Box{{X1: 95, Y1: 105, X2: 225, Y2: 195}, {X1: 420, Y1: 300, X2: 500, Y2: 380}}
	m, err := Detections(img, det, DetectionOptions{Classes: []string{"__background__", "RBC", "WBC", "Platelets"}, GT: gt, GTLabels: []int{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Rect.Dx() != 640 || m.Rect.Dy() != 480 {
		t.Fatalf("size %v", m.Rect)
	}
	// The left edge of the first box, below its label, is the class colour.
	c := ClassColor(1)
	found := false
	for dx := -2; dx <= 2; dx++ {
		p := m.RGBAAt(100+dx, 190)
		if absDiff(p.R, c.R) < 30 && absDiff(p.G, c.G) < 30 && absDiff(p.B, c.B) < 30 {
			found = true
		}
	}
	if !found {
		t.Errorf("class colour %v not at the box's left edge (%v)", c, m.RGBAAt(100, 190))
	}
	// The box centre is untouched.
	if m.RGBAAt(160, 170) != img.RGBAAt(160, 170) {
		t.Errorf("box interior changed: %v vs %v", m.RGBAAt(160, 170), img.RGBAAt(160, 170))
	}
	if err := m.Save(filepath.Join(outDir(t), "detections.png")); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(m.PNG())); err != nil {
		t.Fatal(err)
	}
	// A small image is scaled up for legibility.
	s, err := Detections(testImage(128, 96), fasterrcnn.Detections{Boxes: []box.Box{{X1: 10, Y1: 10, X2: 60, Y2: 50}}, Scores: []float32{0.9}, Labels: []int{2}}, DetectionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Rect.Dx() != 128*4 {
		t.Errorf("small image drawn at %v", s.Rect)
	}
	_ = s.Save(filepath.Join(outDir(t), "detections_small.png"))

	nan := float32(math.NaN())
	bad := []struct {
		name string
		img  image.Image
		det  fasterrcnn.Detections
		o    DetectionOptions
	}{
		{"nil image", nil, fasterrcnn.Detections{}, DetectionOptions{}},
		{"empty image", image.NewRGBA(image.Rect(0, 0, 0, 0)), fasterrcnn.Detections{}, DetectionOptions{}},
		{"lengths", img, fasterrcnn.Detections{Boxes: []box.Box{{X2: 1, Y2: 1}}}, DetectionOptions{}},
		{"nan", img, fasterrcnn.Detections{Boxes: []box.Box{{X1: nan, X2: 1, Y2: 1}}, Scores: []float32{1}, Labels: []int{1}}, DetectionOptions{}},
		{"gt labels", img, fasterrcnn.Detections{}, DetectionOptions{GT: gt, GTLabels: []int{1}}},
	}
	for _, c := range bad {
		if _, err := Detections(c.img, c.det, c.o); !errors.Is(err, ErrInput) {
			t.Errorf("%s: err %v, want ErrInput", c.name, err)
		}
	}
	if err := m.Save(filepath.Join(t.TempDir(), "x.svg")); !errors.Is(err, ErrInput) {
		t.Errorf("save svg: %v", err)
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

func TestAnchorFigures(t *testing.T) {
	f, err := Anchors(anchor.Defaults())
	checkFigure(t, "anchors", f, err)
	if _, err := Anchors(anchor.Config{}); err == nil {
		t.Error("empty config accepted")
	}
	m, err := AnchorsOverImage(testImage(427, 320), anchor.Config{Sizes: []float64{32, 64, 128}, AspectRatios: []float64{0.5, 1, 2}}, 32, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(filepath.Join(outDir(t), "anchors_over_image.png")); err != nil {
		t.Fatal(err)
	}
	if _, err := AnchorsOverImage(testImage(10, 10), anchor.Defaults(), 0, 1); !errors.Is(err, ErrInput) {
		t.Errorf("stride 0: %v", err)
	}
	var bs []box.Box
	for i := 0; i < 300; i++ {
		s := float32(12 + i%90)
		x := float32((i * 37) % 380)
		bs = append(bs, box.Box{X1: x, Y1: float32(i % 250), X2: x + s, Y2: float32(i%250) + s*float32(1+i%3)/2})
	}
	cov, err := anchor.Analyze([]anchor.ImageBoxes{{Height: 480, Width: 480, Boxes: bs}}, anchor.Defaults(), 32)
	if err != nil {
		t.Fatal(err)
	}
	f, err = AnchorCoverage(cov)
	checkFigure(t, "coverage", f, err)
}

func TestGradNormsFigure(t *testing.T) {
	var ns []train.GradNorm
	for _, n := range []string{"conv1.weight", "layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer2.0.conv1.weight", "layer3.0.conv1.weight", "layer4.1.conv2.weight", "rpn.head.conv.0.0.weight", "rpn.head.cls_logits.weight", "roi_heads.box_head.fc6.weight", "roi_heads.box_predictor.bbox_pred.bias"} {
		ns = append(ns, train.GradNorm{Name: n, Norm: math.Pow(10, float64(len(ns)%5)-3)})
	}
	ns[2].Norm = 0
	ns[7].Norm = math.Inf(1)
	f, err := GradNorms(ns)
	checkFigure(t, "gradnorms", f, err)
}

func TestPRFigure(t *testing.T) {
	ev := eval.NewCOCO([]eval.Category{{ID: 1, Name: "RBC"}, {ID: 2, Name: "WBC"}, {ID: 3, Name: "Platelets"}})
	for img := int64(0); img < 5; img++ {
		gt := eval.GroundTruth{ImageID: img}
		dt := eval.Detections{ImageID: img}
		for k := 0; k < 6; k++ {
			x := float32(k * 50)
			b := box.Box{X1: x, Y1: 10, X2: x + 40, Y2: 50}
			l := 1 + k%3
			gt.Boxes, gt.Labels = append(gt.Boxes, b), append(gt.Labels, l)
			if (k+int(img))%4 != 0 {
				sh := float32((k + int(img)) % 3 * 4)
				dt.Boxes = append(dt.Boxes, box.Box{X1: b.X1 + sh, Y1: b.Y1, X2: b.X2 + sh, Y2: b.Y2})
				dt.Labels = append(dt.Labels, l)
				dt.Scores = append(dt.Scores, float32(0.3+0.1*float64(k)))
			}
			dt.Boxes = append(dt.Boxes, box.Box{X1: x + 20, Y1: 200, X2: x + 60, Y2: 240})
			dt.Labels = append(dt.Labels, l)
			dt.Scores = append(dt.Scores, float32(0.2+0.05*float64(k+int(img))))
		}
		if err := ev.Add(gt, dt); err != nil {
			t.Fatal(err)
		}
	}
	res, err := ev.Evaluate()
	if err != nil {
		t.Fatal(err)
	}
	f, err := PR(res, 0.5)
	checkFigure(t, "pr", f, err)
}
