package train

import (
	"context"
	"math"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/data"
	"github.com/detlab/detlab/lib/fasterrcnn"
	"github.com/detlab/detlab/lib/nn"
)

// tinyBody is a fast stride-8 backbone for tests: three 3x3 stride-2
// convolutions with ReLU.
type tinyBody struct{ convs []*nn.Conv2d }

func newTinyBody(t testing.TB) *tinyBody {
	rng := rand.New(rand.NewSource(1))
	b := &tinyBody{}
	for i, ch := range [][2]int{{3, 16}, {16, 32}, {32, 32}} {
		c, err := nn.NewConv2d("conv"+string(rune('0'+i)), ch[0], ch[1], 3, 2, 1, true, rng)
		if err != nil {
			t.Fatal(err)
		}
		b.convs = append(b.convs, c)
	}
	return b
}

func (b *tinyBody) Forward(g *nn.Graph, x *nn.Var) (*nn.Var, error) {
	for _, c := range b.convs {
		y, err := c.Forward(g, x)
		if err != nil {
			return nil, err
		}
		x = nn.ReLU(g, y)
	}
	return x, nil
}
func (b *tinyBody) OutChannels() int { return 32 }
func (b *tinyBody) SetTraining(bool) {}
func (b *tinyBody) Params() []*nn.Param {
	var ps []*nn.Param
	for _, c := range b.convs {
		ps = append(ps, c.Params()...)
	}
	return ps
}
func (b *tinyBody) AddState(sd *nn.StateDict, prefix string) {
	for i, c := range b.convs {
		c.AddState(sd, prefix+"conv"+string(rune('0'+i))+".")
	}
}

// tinyDetector is a small Faster R-CNN on 64x64 synthetic shapes.
func tinyDetector(t testing.TB) (*fasterrcnn.Model, *data.ShapesDataset) {
	ds, err := data.Shapes(data.ShapesConfig{N: 4, Width: 64, Height: 64, MinObjects: 1, MaxObjects: 2,
		MinSize: 16, MaxSize: 32, Classes: []string{data.Rectangle, data.Ellipse}, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	cfg := fasterrcnn.Defaults(data.NumClasses(ds))
	cfg.MinSize, cfg.MaxSize = 64, 64
	cfg.Anchors.Sizes = []float64{16, 32}
	cfg.RepresentationSize = 32
	cfg.RPN.PreNMSTopNTrain, cfg.RPN.PostNMSTopNTrain = 200, 100
	cfg.RPN.BatchSizePerImage, cfg.RoI.BatchSizePerImage = 64, 64
	cfg.Backbone = newTinyBody(t)
	cfg.Seed = 2
	m, err := fasterrcnn.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m, ds
}

func firstBatch(t testing.TB, ds data.Dataset, n int) data.Batch {
	l, err := data.NewLoader(ds, data.LoaderConfig{BatchSize: n, Tensors: true})
	if err != nil {
		t.Fatal(err)
	}
	it := l.Epoch(context.Background(), 0)
	defer it.Close()
	b, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOverfitOneBatchDetector: on one batch of two 64x64 images the tiny
// detector's total loss falls by at least 10x within 200 steps.
func TestOverfitOneBatchDetector(t *testing.T) {
	m, ds := tinyDetector(t)
	tr := New(Detector(m), Config{LR: 0.02, Momentum: 0.9, ClipNorm: 10})
	res, err := OverfitOneBatch(context.Background(), tr, firstBatch(t, ds, 2), 200)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("total loss %.4f -> %.4f over %d steps", res.First, res.Last, len(res.Losses))
	for i := 0; i < len(res.Losses); i += 40 {
		t.Logf("step %d: %v", i, res.Losses[i])
	}
	if !(res.Last*10 < res.First) {
		t.Errorf("loss fell only from %v to %v", res.First, res.Last)
	}
	if _, err := OverfitOneBatch(context.Background(), tr, data.Batch{}, 3); err == nil {
		t.Error("empty batch: no error")
	}
}

// TestDetectorResumeAndAMP trains the tiny detector on the synthetic shapes
// for 2 epochs (4 steps): float32, AMP (same losses), and AMP stopped after step 1, checkpointed, loaded into a
// freshly built model and continued (same losses and weights, tolerance 0:
// the samplers are reseeded from the position).
func TestDetectorResumeAndAMP(t *testing.T) {
	cfg := Config{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4, BatchSize: 2, Seed: 4,
		Augment: data.HFlip{P: 0.5}, Schedule: StepLR(1, 0.1)}
	run := func(amp bool, stopAt int, resumeFrom string) (*Trainer, *fasterrcnn.Model) {
		m, ds := tinyDetector(t)
		c := cfg
		c.AMP = amp
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if stopAt > 0 {
			c.Reporter = ReporterFunc(func(p Progress) {
				if p.Step == stopAt {
					cancel()
				}
			})
		}
		tr := New(Detector(m), c)
		if resumeFrom != "" {
			if err := tr.Load(resumeFrom); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tr.Fit(ctx, ds, 2); err != nil && !(stopAt > 0 && ctx.Err() != nil) {
			t.Fatal(err)
		}
		return tr, m
	}
	f32, _ := run(false, 0, "")
	amp, mamp := run(true, 0, "")
	if len(amp.History.Records) != 4 {
		t.Fatalf("%d steps, want 4", len(amp.History.Records))
	}
	// Bit for bit while the detector computes in float32 under AMP; 5%
	// relative once fasterrcnn honours autocast (reduced-precision products).
	tol := 0.0
	if amp.Precision() != nn.Float32 {
		tol = 0.05
	}
	t.Logf("detector under AMP computes in %v", amp.Precision())
	for i, r := range amp.History.Records {
		a, b := float64(r.Losses["loss"]), float64(f32.History.Records[i].Losses["loss"])
		if math.Abs(a-b) > tol*b {
			t.Errorf("step %d: AMP loss %v, float32 %v", i, a, b)
		}
	}
	stopped, _ := run(true, 1, "")
	path := t.TempDir() + "/ckpt.safetensors"
	if err := stopped.Save(path); err != nil {
		t.Fatal(err)
	}
	resumed, mres := run(true, 0, path)
	for i, r := range resumed.History.Records {
		if r.Losses["loss"] != amp.History.Records[i].Losses["loss"] {
			t.Errorf("step %d: resumed loss %v, uninterrupted %v", i, r.Losses["loss"], amp.History.Records[i].Losses["loss"])
		}
	}
	a, b := mamp.StateDict(), mres.StateDict()
	for _, k := range a.Keys {
		for j, v := range a.Tensors[k].Data() {
			if b.Tensors[k].Data()[j] != v {
				t.Fatalf("%s[%d]: resumed %v, uninterrupted %v", k, j, b.Tensors[k].Data()[j], v)
			}
		}
	}
}
