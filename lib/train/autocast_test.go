package train

import (
	"context"
	"math"
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/data"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// graphModel is a two-layer perceptron on lib/nn graphs that honours
// autocast: it regresses the normalised first box from the pixels.
type graphModel struct {
	fc1, fc2 *nn.Linear
	prec     nn.Precision
}

func newGraphModel(t testing.TB, in int) *graphModel {
	rng := rand.New(rand.NewSource(3))
	fc1, err := nn.NewLinear("fc1", in, 16, true, rng)
	if err != nil {
		t.Fatal(err)
	}
	fc2, err := nn.NewLinear("fc2", 16, 4, true, rng)
	if err != nil {
		t.Fatal(err)
	}
	return &graphModel{fc1: fc1, fc2: fc2}
}

func (m *graphModel) Params() []*nn.Param {
	return append(m.fc1.Params(), m.fc2.Params()...)
}

func (m *graphModel) SetAutocast(p nn.Precision) bool { m.prec = p; return true }

type graphLoss struct {
	g      *nn.Graph
	total  *nn.Var
	values map[string]float32
}

func (l *graphLoss) Values() map[string]float32 { return l.values }
func (l *graphLoss) Backward(scale float32) error {
	return l.g.Backward(nn.MulScalar(l.g, l.total, scale))
}

func (m *graphModel) Loss(ctx context.Context, b data.Batch) (Loss, error) {
	imgs, err := b.Images()
	if err != nil {
		return nil, err
	}
	in := imgs[0].Len()
	x := tensor.New(len(imgs), in)
	y := tensor.New(len(imgs), 4)
	for i, img := range imgs {
		copy(x.Data()[i*in:], img.Data())
		s := b.Samples[i]
		bx := s.Boxes[0]
		fw, fh := float32(s.Width), float32(s.Height)
		copy(y.Data()[i*4:], []float32{-bx.X1 / fw, -bx.Y1 / fh, -bx.X2 / fw, -bx.Y2 / fh})
	}
	g := nn.NewGraph().WithAutocast(m.prec)
	h, err := m.fc1.Forward(g, g.Input(x))
	if err != nil {
		return nil, err
	}
	out, err := m.fc2.Forward(g, nn.ReLU(g, h))
	if err != nil {
		return nil, err
	}
	r, err := nn.Add(g, out, g.Input(y))
	if err != nil {
		return nil, err
	}
	sq, err := nn.Mul(g, r, r)
	if err != nil {
		return nil, err
	}
	total := nn.MulScalar(g, nn.Sum(g, sq), 1/float32(len(imgs)))
	return &graphLoss{g: g, total: total, values: map[string]float32{"loss": total.Value.Data()[0]}}, nil
}

// TestAutocastTraining trains the perceptron with AMP in bfloat16 and
// float16 (emulated by lib/nn) and in float32: the autocast precision is
// applied during Fit and switched off after, and the final losses agree
// within 5% relative (the reduced-precision rounding of the products
// perturbs every step; measured differences are printed).
func TestAutocastTraining(t *testing.T) {
	ds := newToyData(16, 8, 9)
	run := func(amp bool, p nn.Precision) (float64, *Trainer) {
		m := newGraphModel(t, 3*8*8)
		var seen []nn.Precision
		tr := New(m, Config{LR: 0.01, Momentum: 0.9, BatchSize: 4, AMP: amp, Precision: p, Seed: 1,
			Reporter: ReporterFunc(func(Progress) { seen = append(seen, m.prec) })})
		h, err := tr.Fit(context.Background(), ds, 15)
		if err != nil {
			t.Fatal(err)
		}
		want := nn.Float32
		if amp {
			want = p
			if p == nn.Float32 {
				want = nn.BFloat16
			}
		}
		if tr.Precision() != want || seen[0] != want || m.prec != nn.Float32 {
			t.Errorf("AMP %v %v: trainer precision %v, during Fit %v, after %v", amp, p, tr.Precision(), seen[0], m.prec)
		}
		n := len(h.Records)
		last := (h.Records[n-1].Losses["loss"] + h.Records[n-2].Losses["loss"] + h.Records[n-3].Losses["loss"]) / 3
		return float64(last), tr
	}
	l32, tr32 := run(false, nn.Float32)
	if first := float64(tr32.History.Records[0].Losses["loss"]); !(l32 < first/2) {
		t.Fatalf("float32 training did not learn: %v -> %v", first, l32)
	}
	for _, p := range []nn.Precision{nn.Float32, nn.Float16} { // Float32 under AMP means bfloat16
		l, tr := run(true, p)
		rel := math.Abs(l-l32) / l32
		t.Logf("AMP %v: final loss %.6f, float32 %.6f, relative difference %.2e, skipped %d, scale %v",
			tr.Precision(), l, l32, rel, tr.Scaler.Skipped, tr.Scaler.Scale)
		if rel > 0.05 {
			t.Errorf("AMP %v: final loss %v, float32 %v", tr.Precision(), l, l32)
		}
	}
}

// TestFloat16OverflowBacksOff starts float16 autocast with a loss scale of
// 2^40: the rounded output gradients overflow float16, those steps are
// skipped and the scale halves each time until the gradients fit, and
// then training proceeds.
func TestFloat16OverflowBacksOff(t *testing.T) {
	ds := newToyData(16, 8, 9)
	m := newGraphModel(t, 3*8*8)
	tr := New(m, Config{LR: 0.01, Momentum: 0.9, BatchSize: 4, AMP: true, Precision: nn.Float16})
	tr.Scaler.Scale = math.Ldexp(1, 40)
	h, err := tr.Fit(context.Background(), ds, 10)
	if err != nil {
		t.Fatal(err)
	}
	skipped := tr.Scaler.Skipped
	if skipped == 0 || skipped > 30 {
		t.Fatalf("%d steps skipped", skipped)
	}
	for i, r := range h.Records {
		if r.Skipped != (i < skipped) || r.Scale != math.Ldexp(1, 40-min(i, skipped)) {
			t.Errorf("step %d: skipped %v scale %v", i, r.Skipped, r.Scale)
		}
	}
	t.Logf("skipped the first %d steps, scale settled at 2^%v; loss %v -> %v", skipped,
		math.Log2(tr.Scaler.Scale), h.Records[0].Losses["loss"], h.Records[len(h.Records)-1].Losses["loss"])
	if !(h.Records[len(h.Records)-1].Losses["loss"] < h.Records[0].Losses["loss"]/2) {
		t.Error("training did not recover")
	}
}
