package train

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/detlab/detlab/lib/nn"
)

const toySize = 4

func toyTrainer(cfg Config) (*Trainer, *linModel) {
	m := newLinModel(toySize, 7)
	if cfg.LR == 0 {
		cfg.LR = 0.05
	}
	cfg.Sequential = cfg.Sequential || false
	return New(m, cfg), m
}

// TestAccumulationEquivalence: BatchSize 2 x AccumSteps 2 gives the same
// parameters as BatchSize 4 (and 1 x 4), with momentum, weight decay and
// clipping. Tolerance 2e-6 absolute (parameters are O(0.1); the sums are
// taken in a different order).
func TestAccumulationEquivalence(t *testing.T) {
	ds := newToyData(12, toySize, 1)
	base := Config{Momentum: 0.9, WeightDecay: 1e-3, ClipNorm: 5, Seed: 3}
	run := func(bs, acc int) ([][]float32, *History) {
		cfg := base
		cfg.BatchSize, cfg.AccumSteps = bs, acc
		cfg.LR = 0.05
		m := newLinModel(toySize, 7)
		tr := New(noSampler{m}, cfg)
		h, err := tr.Fit(context.Background(), ds, 3)
		if err != nil {
			t.Fatal(err)
		}
		return paramsCopy(m.Params()), h
	}
	ref, href := run(4, 1)
	for _, c := range []struct{ bs, acc int }{{2, 2}, {1, 4}} {
		got, h := run(c.bs, c.acc)
		if d := maxAbsDiff(ref, got); d > 2e-6 {
			t.Errorf("batch %d x accum %d: params differ by %g from batch 4", c.bs, c.acc, d)
		}
		if len(h.Records) != len(href.Records) {
			t.Fatalf("batch %d x accum %d: %d steps, want %d", c.bs, c.acc, len(h.Records), len(href.Records))
		}
		for i, r := range h.Records {
			if d := math.Abs(float64(r.Losses["loss"] - href.Records[i].Losses["loss"])); d > 1e-5 {
				t.Errorf("step %d: loss %v, batch 4 %v", i, r.Losses["loss"], href.Records[i].Losses["loss"])
			}
		}
	}
	if len(href.Records) != 9 || href.Records[8].Epoch != 2 {
		t.Errorf("3 epochs of 12 images in batches of 4: %d records", len(href.Records))
	}
}

// TestAMPMatchesFloat32: with power-of-two scales the scaled backward and
// the unscale are exact in float32, so AMP training equals float32 training
// bit for bit (tolerance 0), including a group of 3 micro-batches.
func TestAMPMatchesFloat32(t *testing.T) {
	ds := newToyData(9, toySize, 2)
	run := func(amp bool) ([][]float32, *History) {
		tr, m := toyTrainer(Config{Momentum: 0.9, BatchSize: 1, AccumSteps: 3, AMP: amp, Seed: 5})
		h, err := tr.Fit(context.Background(), ds, 4)
		if err != nil {
			t.Fatal(err)
		}
		return paramsCopy(m.Params()), h
	}
	p32, h32 := run(false)
	pamp, hamp := run(true)
	if d := maxAbsDiff(p32, pamp); d != 0 {
		t.Errorf("AMP params differ from float32 by %g", d)
	}
	last := len(h32.Records) - 1
	if h32.Records[last].Losses["loss"] != hamp.Records[last].Losses["loss"] {
		t.Errorf("final loss AMP %v float32 %v", hamp.Records[last].Losses["loss"], h32.Records[last].Losses["loss"])
	}
	if hamp.Records[0].Scale != 65536 || h32.Records[0].Scale != 1 {
		t.Errorf("scales %v %v", hamp.Records[0].Scale, h32.Records[0].Scale)
	}
	if !(h32.Records[last].Losses["loss"] < h32.Records[0].Losses["loss"]) {
		t.Errorf("loss did not fall: %v -> %v", h32.Records[0].Losses["loss"], h32.Records[last].Losses["loss"])
	}
}

// TestAMPSkipsInfStep injects +Inf into one gradient at step k: exactly
// that step is skipped (parameters and momentum unchanged), the scale
// halves, and training goes on.
func TestAMPSkipsInfStep(t *testing.T) {
	const k = 3
	ds := newToyData(8, toySize, 3)
	var before, after [][]float32
	var m *linModel
	var tr *Trainer
	tr, m = toyTrainer(Config{Momentum: 0.9, BatchSize: 1, AMP: true, Sequential: true,
		AfterBackward: func(step int, ps []*nn.Param) {
			if step == k {
				before = paramsCopy(ps)
				ps[0].Grad.Data()[5] = float32(math.Inf(1))
			}
			if step == k+1 {
				after = paramsCopy(ps)
			}
		}})
	h, err := tr.Fit(context.Background(), ds, 1)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(before, after); d != 0 {
		t.Errorf("skipped step changed the parameters by %g", d)
	}
	for i, r := range h.Records {
		wantScale := 65536.0
		if i > k {
			wantScale = 32768
		}
		if r.Skipped != (i == k) || r.Scale != wantScale {
			t.Errorf("step %d: skipped %v scale %v", i, r.Skipped, r.Scale)
		}
	}
	if tr.Scaler.Scale != 32768 || tr.Scaler.Skipped != 1 || tr.Scaler.GoodSteps != len(h.Records)-k-1 {
		t.Errorf("scaler %+v", tr.Scaler)
	}
	if h.Records[k].SkipReason != "non-finite gradient in fc.weight" {
		t.Errorf("reason %q", h.Records[k].SkipReason)
	}
	if d := maxAbsDiff(after, paramsCopy(m.Params())); d == 0 {
		t.Error("no step after the skipped one changed the parameters")
	}
}

// TestNonFiniteGuard names the parameter whose gradient is Inf and the loss
// that is NaN when the guard is on without AMP.
func TestNonFiniteGuard(t *testing.T) {
	ds := newToyData(4, toySize, 4)
	tr, _ := toyTrainer(Config{CheckFinite: true, AfterBackward: func(step int, ps []*nn.Param) {
		if step == 1 {
			ps[1].Grad.Data()[0] = float32(math.NaN())
		}
	}})
	_, err := tr.Fit(context.Background(), ds, 1)
	var nf *NonFiniteError
	if !errors.As(err, &nf) || nf.Name != "fc.bias" || nf.Where != "gradient" || nf.Step != 1 {
		t.Errorf("got %v", err)
	}
	if tr.Step != 1 || len(tr.History.Records) != 1 {
		t.Errorf("after the error: step %d, %d records", tr.Step, len(tr.History.Records))
	}
	tr2, m2 := toyTrainer(Config{CheckFinite: true})
	m2.nanAt = 2
	_, err = tr2.Fit(context.Background(), ds, 1)
	if !errors.As(err, &nf) || nf.Name != "loss" || nf.Where != "loss" {
		t.Errorf("NaN loss: got %v", err)
	}
}

// TestCancelAndContinue cancels Fit from the reporter after step 5 (in the
// middle of an epoch and of nothing else), checks the counters, and
// continues: the result equals an uninterrupted run bit for bit.
func TestCancelAndContinue(t *testing.T) {
	ds := newToyData(10, toySize, 5)
	cfg := Config{Momentum: 0.9, WeightDecay: 1e-4, BatchSize: 2, AccumSteps: 2, AMP: true, Seed: 9}
	ref, mref := toyTrainer(cfg)
	if _, err := ref.Fit(context.Background(), ds, 3); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Reporter = ReporterFunc(func(p Progress) {
		if p.Step == 5 {
			cancel()
		}
	})
	tr, m := toyTrainer(cfg)
	_, err := tr.Fit(ctx, ds, 3)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fit after cancel: %v", err)
	}
	// 10 images in batches of 2 -> 5 batches, steps of 2: 3 steps per epoch.
	if tr.Step != 5 || tr.Epoch != 1 || tr.Batch != 4 || len(tr.History.Records) != 5 {
		t.Fatalf("stopped at step %d epoch %d batch %d with %d records", tr.Step, tr.Epoch, tr.Batch, len(tr.History.Records))
	}
	if _, err := tr.Fit(context.Background(), ds, 3); err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(paramsCopy(mref.Params()), paramsCopy(m.Params())); d != 0 {
		t.Errorf("continued run differs from uninterrupted by %g", d)
	}
	if len(tr.History.Records) != len(ref.History.Records) {
		t.Fatalf("%d records, want %d", len(tr.History.Records), len(ref.History.Records))
	}
	for i, r := range tr.History.Records {
		if r.Losses["loss"] != ref.History.Records[i].Losses["loss"] || r.Step != i {
			t.Errorf("record %d: %v, uninterrupted %v", i, r.Losses["loss"], ref.History.Records[i].Losses["loss"])
		}
	}
}

func TestFitBadInput(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		ds   *toyData
	}{
		{"negative lr", Config{LR: -1}, newToyData(2, toySize, 1)},
		{"nesterov without momentum", Config{Nesterov: true}, newToyData(2, toySize, 1)},
		{"empty dataset", Config{}, &toyData{}},
		{"negative clip", Config{ClipNorm: -1}, newToyData(2, toySize, 1)},
	}
	for _, c := range cases {
		tr, _ := toyTrainer(c.cfg)
		if _, err := tr.Fit(context.Background(), c.ds, 1); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

// TestProgress: one report per optimizer step, counting to Total, with a
// rate, an ETA reaching 0, and the step's learning rate and losses.
func TestProgress(t *testing.T) {
	ds := newToyData(7, toySize, 10)
	var ps []Progress
	tr, _ := toyTrainer(Config{BatchSize: 2, AccumSteps: 3, Schedule: StepLR(1, 0.5),
		Reporter: ReporterFunc(func(p Progress) { ps = append(ps, p) })})
	if _, err := tr.Fit(context.Background(), ds, 2); err != nil {
		t.Fatal(err)
	}
	// 7 images in batches of 2: 4 batches per epoch, steps of 3 and 1.
	if len(ps) != 4 || ps[3].Done != 4 || ps[3].Total != 4 || ps[3].ETA != 0 || ps[1].Batch != 4 || ps[1].Batches != 4 {
		t.Fatalf("progress %+v", ps)
	}
	for i, p := range ps {
		wantLR := 0.05
		if i >= 2 {
			wantLR = 0.025
		}
		if p.Step != i+1 || p.Epoch != i/2 || p.LR != wantLR || p.Rate <= 0 || p.Losses["loss"] <= 0 {
			t.Errorf("report %d: %+v", i, p)
		}
	}
}
