package train

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/weights"
)

// TestResumeMatchesUninterrupted: a run stopped mid-epoch, saved, loaded
// into a fresh model and trainer and continued gives the same losses and
// parameters as an uninterrupted run, bit for bit (shuffled batches,
// momentum, AMP, accumulation, a schedule with warm-up).
func TestResumeMatchesUninterrupted(t *testing.T) {
	ds := newToyData(10, toySize, 6)
	cfg := Config{Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3, BatchSize: 2, AccumSteps: 2,
		AMP: true, Seed: 11, Schedule: Warmup(StepLR(1, 0.5), 4, 0.1)}
	ref, mref := toyTrainer(cfg)
	if _, err := ref.Fit(context.Background(), ds, 3); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ckpt.safetensors")
	for _, stopAt := range []int{3, 4} { // 3: epoch boundary, 4: mid-epoch
		ctx, cancel := context.WithCancel(context.Background())
		c := cfg
		c.Reporter = ReporterFunc(func(p Progress) {
			if p.Step == stopAt {
				cancel()
			}
		})
		tr, _ := toyTrainer(c)
		if _, err := tr.Fit(ctx, ds, 3); !errors.Is(err, context.Canceled) {
			t.Fatalf("stop at %d: %v", stopAt, err)
		}
		if err := tr.Save(path); err != nil {
			t.Fatal(err)
		}
		c.Reporter = nil
		c.Seed = 999 // the checkpoint's seed wins
		c.LR = 0.05
		fresh, m := New(newLinModel(toySize, 12345), c), (*linModel)(nil)
		m = fresh.model.(*linModel)
		if err := fresh.Load(path); err != nil {
			t.Fatal(err)
		}
		if fresh.Step != stopAt || len(fresh.History.Records) != stopAt {
			t.Fatalf("loaded step %d, %d records", fresh.Step, len(fresh.History.Records))
		}
		if _, err := fresh.Fit(context.Background(), ds, 3); err != nil {
			t.Fatal(err)
		}
		for i, r := range fresh.History.Records {
			if r.Losses["loss"] != ref.History.Records[i].Losses["loss"] || r.LR != ref.History.Records[i].LR {
				t.Errorf("stop %d, step %d: loss %v lr %v, uninterrupted %v %v", stopAt, i, r.Losses["loss"], r.LR,
					ref.History.Records[i].Losses["loss"], ref.History.Records[i].LR)
			}
		}
		if d := maxAbsDiff(paramsCopy(mref.Params()), paramsCopy(m.Params())); d != 0 {
			t.Errorf("stop %d: resumed parameters differ by %g", stopAt, d)
		}
	}
}

type failingWriter struct {
	w    io.Writer
	left int
}

func (f *failingWriter) Write(b []byte) (int, error) {
	if len(b) > f.left {
		n, _ := f.w.Write(b[:f.left])
		f.left = 0
		return n, errors.New("disk full (injected)")
	}
	f.left -= len(b)
	return f.w.Write(b)
}

// TestSaveIsAtomic: a save that fails midway leaves the last good
// checkpoint in place and no temporary file behind.
func TestSaveIsAtomic(t *testing.T) {
	ds := newToyData(4, toySize, 7)
	tr, _ := toyTrainer(Config{Momentum: 0.9})
	if _, err := tr.Fit(context.Background(), ds, 1); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "ckpt.safetensors")
	if err := tr.Save(path); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(context.Background(), ds, 2); err != nil {
		t.Fatal(err)
	}
	writeHook = func(w io.Writer) io.Writer { return &failingWriter{w: w, left: 300} }
	defer func() { writeHook = nil }()
	if err := tr.Save(path); err == nil {
		t.Fatal("save through a failing writer succeeded")
	}
	now, _ := os.ReadFile(path)
	if string(now) != string(good) {
		t.Error("the failed save changed the last good checkpoint")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("files left: %v", ents)
	}
	writeHook = nil
	tr2, _ := toyTrainer(Config{Momentum: 0.9})
	if err := tr2.Load(path); err != nil || tr2.Epoch != 1 || tr2.Step != 4 {
		t.Errorf("last good checkpoint: %v, epoch %d step %d", err, tr2.Epoch, tr2.Step)
	}
}

func TestLoadBadCheckpoint(t *testing.T) {
	dir := t.TempDir()
	tr, _ := toyTrainer(Config{Momentum: 0.9})
	if _, err := tr.Fit(context.Background(), newToyData(2, toySize, 1), 1); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.safetensors")
	if err := tr.Save(good); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain.safetensors")
	if err := weights.SaveSafetensorsFile(plain, map[string]*tensor.Tensor{"x": tensor.New(2)}, nil); err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(dir, "corrupt.safetensors")
	b, _ := os.ReadFile(good)
	os.WriteFile(corrupt, b[:len(b)/2], 0o644)
	cases := []struct {
		name  string
		path  string
		model *linModel
	}{
		{"missing file", filepath.Join(dir, "nope"), newLinModel(toySize, 1)},
		{"not a checkpoint", plain, newLinModel(toySize, 1)},
		{"truncated", corrupt, newLinModel(toySize, 1)},
		{"other shapes", good, newLinModel(toySize+1, 1)},
	}
	for _, c := range cases {
		fresh := New(c.model, Config{})
		before := paramsCopy(c.model.Params())
		if err := fresh.Load(c.path); err == nil {
			t.Errorf("%s: no error", c.name)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
		if maxAbsDiff(before, paramsCopy(c.model.Params())) != 0 || fresh.Step != 0 {
			t.Errorf("%s: failed load changed the model or trainer", c.name)
		}
	}
}

// TestCheckpointEveryEpoch: Config.CheckpointPath holds the state after the
// last completed epoch.
func TestCheckpointEveryEpoch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.safetensors")
	tr, m := toyTrainer(Config{Momentum: 0.9, BatchSize: 2, CheckpointPath: path})
	if _, err := tr.Fit(context.Background(), newToyData(4, toySize, 2), 2); err != nil {
		t.Fatal(err)
	}
	fresh := New(newLinModel(toySize, 99), Config{})
	if err := fresh.Load(path); err != nil {
		t.Fatal(err)
	}
	if fresh.Epoch != 2 || fresh.Batch != 0 || fresh.Step != 4 || len(fresh.History.Records) != 4 || len(fresh.Opt.Buffers) != 2 {
		t.Errorf("checkpoint: epoch %d batch %d step %d, %d records, %d buffers", fresh.Epoch, fresh.Batch, fresh.Step,
			len(fresh.History.Records), len(fresh.Opt.Buffers))
	}
	if d := maxAbsDiff(paramsCopy(m.Params()), paramsCopy(fresh.model.Params())); d != 0 {
		t.Errorf("loaded weights differ by %g", d)
	}
}
