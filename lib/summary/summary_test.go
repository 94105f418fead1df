package summary

import (
	"errors"
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/fasterrcnn"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/roi"
)

func newModel(t *testing.T, numClasses int, edit func(*fasterrcnn.Config)) *fasterrcnn.Model {
	t.Helper()
	cfg := fasterrcnn.Defaults(numClasses)
	if edit != nil {
		edit(&cfg)
	}
	m, err := fasterrcnn.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sumPrefix adds up the layers whose name starts with prefix.
func sumPrefix(s *Summary, prefix string) int {
	n := 0
	for _, l := range s.Layers {
		if strings.HasPrefix(l.Name, prefix) {
			n += l.Params
		}
	}
	return n
}

func TestDefaultModel(t *testing.T) {
	for _, nc := range []int{4, 91} {
		m := newModel(t, nc, nil)
		cfg := m.Config()
		s, err := Of(m, 2, 480, 640)
		if err != nil {
			t.Fatal(err)
		}
		// torchvision resnet18 has 11,689,512 parameters; without fc
		// (512*1000 + 1000) that is 11,176,512.
		if got := sumPrefix(s, "backbone."); got != 11176512 {
			t.Errorf("backbone parameters %d, want 11,176,512", got)
		}
		C, A := 512, cfg.Anchors.NumAnchorsPerLocation()
		wantRPN := (C*C*9 + C) + (C*A + A) + (C*4*A + 4*A)
		if got := sumPrefix(s, "rpn.head."); got != wantRPN {
			t.Errorf("RPN head parameters %d, want %d", got, wantRPN)
		}
		r, k := cfg.RepresentationSize, cfg.RoIOutputSize
		wantBox := (C*k*k*r + r) + (r*r + r)
		if got := sumPrefix(s, "roi_heads.box_head."); got != wantBox {
			t.Errorf("box head parameters %d, want %d", got, wantBox)
		}
		wantPred := (r*nc + nc) + (r*4*nc + 4*nc)
		if got := sumPrefix(s, "roi_heads.box_predictor."); got != wantPred {
			t.Errorf("predictor parameters %d, want %d", got, wantPred)
		}
		want := 11176512 + wantRPN + wantBox + wantPred
		if s.TotalParams != want || s.TrainableParams+s.FrozenParams != want {
			t.Errorf("total %d (trainable %d, frozen %d), want %d", s.TotalParams, s.TrainableParams, s.FrozenParams, want)
		}
		// Every parameter belongs to exactly one row.
		if got := sumPrefix(s, ""); got != want {
			t.Errorf("rows add up to %d, want %d", got, want)
		}
		trainable := 0
		for _, p := range m.Params() {
			if p.Trainable {
				trainable += p.Value.Len()
			}
		}
		if s.TrainableParams != trainable {
			t.Errorf("trainable %d, the model's trainable Params add up to %d", s.TrainableParams, trainable)
		}
		if cfg.TrainableBackboneLayers < 5 && s.FrozenParams == 0 {
			t.Errorf("%d trainable backbone layers but nothing frozen", cfg.TrainableBackboneLayers)
		}
		// Shapes: the padded input, the stride-32 features, the RPN outputs.
		if s.Input[2]%32 != 0 || s.Input[3]%32 != 0 {
			t.Errorf("input %v not padded to 32", s.Input)
		}
		for _, l := range s.Layers {
			if l.OutputShape == nil {
				t.Errorf("layer %s without output shape", l.Name)
			}
			if l.Name == "rpn.head.cls_logits" {
				want := []int{2, A, s.Input[2] / 32, s.Input[3] / 32}
				if shapeString(l.OutputShape) != shapeString(want) {
					t.Errorf("cls_logits shape %v, want %v", l.OutputShape, want)
				}
			}
			if l.Name == "roi_heads.box_predictor.cls_score" && l.OutputShape[0] != 2*cfg.RoI.BatchSizePerImage {
				t.Errorf("cls_score shape %v", l.OutputShape)
			}
		}
		if s.ActivationBytes <= 0 || s.TrainingBytes != int64(float64(s.ActivationBytes)*TrainingFactor) {
			t.Errorf("activation bytes %d, training %d", s.ActivationBytes, s.TrainingBytes)
		}
		txt, h := s.String(), s.HTML()
		for _, want := range []string{"backbone.4.0.conv1", "trainable", "frozen", s.Backend} {
			if !strings.Contains(txt, want) {
				t.Errorf("text lacks %q", want)
			}
		}
		if !strings.Contains(h, "<table") || !strings.Contains(h, "rpn.head.cls_logits") || !strings.Contains(h, "frozen") {
			t.Errorf("HTML lacks the table, a layer or the totals")
		}
		if nc == 4 {
			t.Logf("\n%s", txt)
		}
	}
}

func TestFrozenLayers(t *testing.T) {
	m := newModel(t, 3, func(c *fasterrcnn.Config) { c.TrainableBackboneLayers = 3 })
	s, err := Of(m, 1, 320, 320)
	if err != nil {
		t.Fatal(err)
	}
	// torchvision freezes conv1 and layer1 (backbone.0, .1, .4) with 3
	// trainable layers: 9,408 + 128 + 4*(36,864+128) parameters.
	want := 9408 + 128 + 4*(36864+128)
	if s.FrozenParams != want {
		t.Errorf("frozen %d, want %d\n%v", s.FrozenParams, want, s)
	}
	for _, l := range s.Layers {
		frozen := strings.HasPrefix(l.Name, "backbone.0") || strings.HasPrefix(l.Name, "backbone.1") || strings.HasPrefix(l.Name, "backbone.4.")
		if l.Params > 0 && frozen != (trainFlag(l) == "no") {
			t.Errorf("%s: trains %q", l.Name, trainFlag(l))
		}
	}
}

func TestCustomHead(t *testing.T) {
	m := newModel(t, 3, func(c *fasterrcnn.Config) {
		c.BoxHead = roi.BoxHeadFunc(func(g *nn.Graph, x *nn.Var) (*nn.Var, error) { return x, nil })
		c.Predictor = roi.PredictorFunc(func(g *nn.Graph, x *nn.Var) (*nn.Var, *nn.Var, error) { return x, x, nil })
	})
	s, err := Of(m, 1, 256, 256)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range s.Layers {
		if l.Name == "roi_heads.box_head" {
			found = true
			if l.Params != 0 || l.OutputShape != nil {
				t.Errorf("function head: %+v", l)
			}
		}
	}
	if !found {
		t.Errorf("no row for the custom head:\n%v", s)
	}
	if !strings.Contains(s.String(), "?") {
		t.Error("unknown shape not shown as ?")
	}
}

func TestBadInput(t *testing.T) {
	m := newModel(t, 3, nil)
	for _, c := range []struct{ b, h, w int }{{0, 10, 10}, {1, 0, 10}, {1, 10, -1}} {
		if _, err := Of(m, c.b, c.h, c.w); !errors.Is(err, ErrInput) {
			t.Errorf("%v: err %v", c, err)
		}
	}
	if _, err := Of(nil, 1, 10, 10); !errors.Is(err, ErrInput) {
		t.Errorf("nil model: %v", err)
	}
	if Bytes(1536) != "1.5 KiB" || group(11176512) != "11,176,512" || group(12) != "12" {
		t.Errorf("formatting: %s %s", Bytes(1536), group(11176512))
	}
}

// TestDeviceLine checks the device footer: the model's backend, and the GPU
// memory only when there is some.
func TestDeviceLine(t *testing.T) {
	m := newModel(t, 3, nil)
	s, err := Of(m, 1, 320, 320)
	if err != nil {
		t.Fatal(err)
	}
	if s.Device != m.Backend().Name() || s.DeviceMemoryInUse != 0 || s.DeviceMemoryPeak != 0 {
		t.Errorf("CPU model: Device %q (want %q), memory %d/%d", s.Device, m.Backend().Name(), s.DeviceMemoryInUse, s.DeviceMemoryPeak)
	}
	for _, c := range []struct {
		device      string
		inUse, peak int64
		want, not   string
	}{
		{"cpu (im2col)", 0, 0, "compute: " + s.Backend + "; device: cpu (im2col)", "GPU memory"},
		{"cuda:0 (NVIDIA H200)", 3 << 30, 5 << 30, "device: cuda:0 (NVIDIA H200); GPU memory 3.0 GiB in use, 5.0 GiB peak", ""},
		{"cuda:0 (NVIDIA H200)", 0, 1 << 20, "GPU memory 0 B in use, 1.0 MiB peak", ""},
	} {
		s.Device, s.DeviceMemoryInUse, s.DeviceMemoryPeak = c.device, c.inUse, c.peak
		txt, h := s.String(), s.HTML()
		if !strings.Contains(txt, c.want) || !strings.Contains(h, c.want) {
			t.Errorf("%s %d/%d: text and HTML should contain %q:\n%s", c.device, c.inUse, c.peak, c.want, txt)
		}
		if c.not != "" && strings.Contains(txt, c.not) {
			t.Errorf("%s: text contains %q", c.device, c.not)
		}
	}
}
