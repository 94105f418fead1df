package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/detlab/detlab/lib/data"
	"github.com/detlab/detlab/lib/nn"
)

// Config configures a Trainer. The zero value trains with plain SGD at
// learning rate 0 (so set LR), batches of one, shuffled, no accumulation,
// float32, no clipping.
type Config struct {
	// LR is the base learning rate; the Schedule multiplies it.
	LR float64
	// Momentum, Dampening, Nesterov and WeightDecay are torch.optim.SGD's.
	Momentum, Dampening float64
	Nesterov            bool
	WeightDecay         float64
	// NoDecayNormsBiases exempts biases and BatchNorm weights from weight
	// decay (the NormsAndBiases rule).
	NoDecayNormsBiases bool
	// Schedule gives the learning-rate factor (nil: constant), e.g.
	// StepLR(3, 0.1) or Warmup(StepLR(3, 0.1), 1000, 0.001).
	Schedule Schedule
	// BatchSize is the images per forward pass (default 1).
	BatchSize int
	// AccumSteps is the micro-batches per optimizer step (default 1):
	// each micro-batch's loss is scaled by 1/AccumSteps, so the step equals
	// one of a batch AccumSteps times larger. An epoch's last group may be
	// shorter; it is then scaled by 1/(its length).
	AccumSteps int
	// Sequential keeps the dataset order (default: a new shuffle per epoch).
	Sequential bool
	// Workers loads and augments in parallel (default 2).
	Workers int
	// Augment, if not nil, is applied to every training sample.
	Augment data.Augmenter
	// Seed fixes the shuffle, the augmentations and the model's sampling.
	Seed int64
	// AMP turns on mixed precision: loss scaling with GradScaler's
	// semantics (see Scaler) and, for models that implement Autocaster,
	// autocast in Precision. See the package documentation for what runs
	// in which precision.
	AMP bool
	// Precision is the autocast precision under AMP: nn.BFloat16 (the
	// default, also when left at nn.Float32) or nn.Float16.
	Precision nn.Precision
	// ClipNorm, when > 0, clips the global gradient norm
	// (clip_grad_norm_) after unscaling.
	ClipNorm float64
	// CheckFinite stops training with an error naming the first loss or
	// parameter (in Params order) holding a NaN or Inf. Under AMP a
	// non-finite gradient only skips the step, as GradScaler does.
	CheckFinite bool
	// Reporter receives progress after every optimizer step (nil: none).
	Reporter Reporter
	// AfterBackward, if not nil, runs after each step's gradients are
	// accumulated, before unscaling: for inspecting or (in tests)
	// corrupting them. step is the optimizer step about to run.
	AfterBackward func(step int, params []*nn.Param)
	// CheckpointPath, if set, receives a checkpoint after every epoch.
	CheckpointPath string
}

// Trainer trains a Model. Its counters say where training stands, so Fit
// can be called again after an interruption and continues from there.
type Trainer struct {
	model Model
	cfg   Config
	// Opt is the optimizer; its momentum buffers are checkpointed.
	Opt *SGD
	// Scaler is the loss scaler (used when Config.AMP).
	Scaler *Scaler
	// Epoch is the epoch in progress (completed epochs), Batch the next
	// batch index within it, and Step the optimizer steps taken.
	Epoch, Batch, Step int
	// History records every optimizer step.
	History *History
	// precision is what the last Fit computed in.
	precision nn.Precision
}

// Autocaster is implemented by models that can compute their heavy
// operations in reduced precision (lib/nn's Graph.WithAutocast). SetAutocast
// switches it (nn.Float32 turns it off) and reports whether the model
// honours it.
type Autocaster interface {
	SetAutocast(p nn.Precision) bool
}

// Precision reports the precision the convolutions, matrix products and
// RoI features of the last Fit ran in: nn.Float32 without AMP or when the
// model does not implement Autocaster.
func (t *Trainer) Precision() nn.Precision { return t.precision }

// New returns a trainer for m. Invalid settings are reported by Fit.
func New(m Model, cfg Config) *Trainer {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1
	}
	if cfg.AccumSteps <= 0 {
		cfg.AccumSteps = 1
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Schedule == nil {
		cfg.Schedule = Constant()
	}
	opt := &SGD{Momentum: cfg.Momentum, Dampening: cfg.Dampening, Nesterov: cfg.Nesterov, WeightDecay: cfg.WeightDecay}
	if cfg.NoDecayNormsBiases {
		opt.NoDecay = NormsAndBiases
	}
	scaler := NewScaler()
	if dm, ok := m.(interface{ Backend() nn.Backend }); ok {
		opt.Backend = dm.Backend()
		scaler.Backend = opt.Backend
	}
	return &Trainer{model: m, cfg: cfg, Opt: opt, Scaler: scaler, History: &History{}}
}

// Config returns the trainer's configuration (with defaults filled in).
func (t *Trainer) Config() Config { return t.cfg }

// Model returns the model being trained.
func (t *Trainer) Model() Model { return t.model }

// LR returns the learning rate the next optimizer step uses.
func (t *Trainer) LR() float64 {
	return t.cfg.LR * t.cfg.Schedule.Factor(t.Epoch, t.Step)
}

func (t *Trainer) validate() error {
	switch {
	case t.model == nil:
		return errors.New("train: nil model")
	case t.cfg.LR < 0 || math.IsNaN(t.cfg.LR) || math.IsInf(t.cfg.LR, 0):
		return fmt.Errorf("train: invalid learning rate %v", t.cfg.LR)
	case t.cfg.ClipNorm < 0 || math.IsNaN(t.cfg.ClipNorm):
		return fmt.Errorf("train: invalid ClipNorm %v", t.cfg.ClipNorm)
	case t.cfg.Precision < nn.Float32 || t.cfg.Precision > nn.Float16:
		return fmt.Errorf("train: invalid Precision %d", t.cfg.Precision)
	}
	return t.Opt.Validate()
}

// Fit trains on ds until epochs epochs are complete (a total: calling Fit
// again with the same number after an interruption finishes the run). It
// returns the history. When ctx is cancelled Fit returns ctx's error
// within one forward/backward pass: the step in progress is abandoned (its
// gradients cleared), the counters point at its first batch, and the
// model, optimizer and history hold the last completed step.
func (t *Trainer) Fit(ctx context.Context, ds data.Dataset, epochs int) (*History, error) {
	if err := t.validate(); err != nil {
		return t.History, err
	}
	if ds == nil || ds.Len() == 0 {
		return t.History, errors.New("train: empty dataset")
	}
	loader, err := data.NewLoader(ds, data.LoaderConfig{
		BatchSize: t.cfg.BatchSize, Workers: t.cfg.Workers, Shuffle: !t.cfg.Sequential,
		Seed: t.cfg.Seed, Augment: t.cfg.Augment, Tensors: true, OnError: data.Fail,
	})
	if err != nil {
		return t.History, fmt.Errorf("train: %w", err)
	}
	if m, ok := t.model.(interface{ Train() }); ok {
		m.Train()
	}
	t.precision = nn.Float32
	if a, ok := t.model.(Autocaster); ok && t.cfg.AMP {
		p := t.cfg.Precision
		if p == nn.Float32 {
			p = nn.BFloat16
		}
		if a.SetAutocast(p) {
			t.precision = p
			defer a.SetAutocast(nn.Float32)
		}
	}
	nb := loader.NumBatches()
	total := (epochs - t.Epoch) * ((nb + t.cfg.AccumSteps - 1) / t.cfg.AccumSteps)
	total -= t.Batch / t.cfg.AccumSteps
	start, done := time.Now(), 0
	for t.Epoch < epochs {
		if err := t.epoch(ctx, loader, nb, epochs, total, &done, start); err != nil {
			return t.History, err
		}
		t.Epoch++
		t.Batch = 0
		if t.cfg.CheckpointPath != "" {
			if err := t.Save(t.cfg.CheckpointPath); err != nil {
				return t.History, err
			}
		}
	}
	return t.History, nil
}

func (t *Trainer) epoch(ctx context.Context, loader *data.Loader, nb, epochs, total int, done *int, start time.Time) error {
	it := loader.EpochFrom(ctx, t.Epoch, t.Batch)
	defer it.Close()
	for t.Batch < nb {
		n := min(t.cfg.AccumSteps, nb-t.Batch)
		rec, err := t.step(ctx, it, n)
		if err != nil {
			nn.ZeroGradsOn(t.Opt.Backend, t.model.Params())
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		t.Batch += n
		*done++
		if t.cfg.Reporter != nil {
			el := time.Since(start).Seconds()
			rate := float64(*done) / el
			p := Progress{Epoch: t.Epoch, Epochs: epochs, Batch: t.Batch, Batches: nb, Step: t.Step,
				Done: *done, Total: total, Rate: rate, Elapsed: el, Losses: rec.Losses,
				LR: rec.LR, Scale: rec.Scale, Skipped: rec.Skipped}
			if rate > 0 {
				p.ETA = float64(total-*done) / rate
			}
			t.cfg.Reporter.Report(p)
		}
	}
	return nil
}

// step runs n micro-batches and one optimizer step.
func (t *Trainer) step(ctx context.Context, it *data.Iterator, n int) (Record, error) {
	t0 := time.Now()
	params := t.model.Params()
	nn.ZeroGradsOn(t.Opt.Backend, params) // on the device for a GPU model
	scale := 1.0
	if t.cfg.AMP {
		scale = t.Scaler.Scale
	}
	seed := float32(scale / float64(n))
	sum := map[string]float64{}
	for k := 0; k < n; k++ {
		if err := ctx.Err(); err != nil {
			return Record{}, err
		}
		b, err := it.Next()
		if err == io.EOF {
			return Record{}, fmt.Errorf("train: epoch %d ended early at batch %d", t.Epoch, t.Batch+k)
		}
		if err != nil {
			return Record{}, fmt.Errorf("train: loading batch %d of epoch %d: %w", t.Batch+k, t.Epoch, err)
		}
		if s, ok := t.model.(interface{ SeedSampler(int64) }); ok {
			s.SeedSampler(mixSeed(t.cfg.Seed, int64(t.Epoch), int64(t.Batch+k)))
		}
		l, err := t.model.Loss(ctx, b)
		if err != nil {
			return Record{}, fmt.Errorf("train: forward at step %d: %w", t.Step, err)
		}
		vals := l.Values()
		if t.cfg.CheckFinite {
			if err := checkLosses(vals, t.Step); err != nil {
				return Record{}, err
			}
		}
		if err := l.Backward(seed); err != nil {
			return Record{}, fmt.Errorf("train: backward at step %d: %w", t.Step, err)
		}
		for key, v := range vals {
			sum[key] += float64(v) / float64(n)
		}
	}
	// The host steps below read the gradients: wait for the backward
	// passes a device backend may still have queued.
	if err := nn.Sync(t.Opt.Backend); err != nil {
		return Record{}, fmt.Errorf("train: backward at step %d: %w", t.Step, err)
	}
	if t.cfg.AfterBackward != nil {
		t.cfg.AfterBackward(t.Step, params)
	}
	finite, first := true, ""
	if t.cfg.AMP {
		finite, first = t.Scaler.Unscale(params)
	} else if t.cfg.CheckFinite {
		finite, first = firstNonFinite(params)
	}
	if !finite && !t.cfg.AMP {
		return Record{}, &NonFiniteError{Step: t.Step, Where: "gradient", Name: first}
	}
	rec := Record{Epoch: t.Epoch, Step: t.Step, LR: t.LR(), Scale: scale, Losses: map[string]float32{}}
	for k, v := range sum {
		rec.Losses[k] = float32(v)
	}
	if finite {
		rec.GradNorm = GlobalGradNorm(params)
		if t.cfg.ClipNorm > 0 {
			ClipGradNorm(params, t.cfg.ClipNorm)
		}
		if err := t.Opt.Step(params, rec.LR); err != nil {
			return Record{}, err
		}
		if t.cfg.CheckFinite {
			if err := nn.Sync(t.Opt.Backend); err != nil { // the update may be queued
				return Record{}, fmt.Errorf("train: optimizer step %d: %w", t.Step, err)
			}
			if ok, name := firstNonFiniteValue(params); !ok {
				return Record{}, &NonFiniteError{Step: t.Step, Where: "parameter", Name: name}
			}
		}
	} else {
		rec.Skipped = true
		rec.GradNorm = math.Inf(1)
		rec.SkipReason = "non-finite gradient in " + first
	}
	if t.cfg.AMP {
		t.Scaler.Update(!finite)
	}
	nn.ZeroGradsOn(t.Opt.Backend, params) // on the device for a GPU model
	// The step's time includes the device's; the gradients read as zero.
	if err := nn.Sync(t.Opt.Backend); err != nil {
		return Record{}, fmt.Errorf("train: step %d: %w", t.Step, err)
	}
	rec.Seconds = time.Since(t0).Seconds()
	rec.WallTime = float64(time.Now().UnixNano()) / 1e9
	t.History.Records = append(t.History.Records, rec)
	t.Step++
	return rec, nil
}

// mixSeed derives a seed for the model's sampler from the run's seed and
// the position of a forward pass (SplitMix64 finaliser).
func mixSeed(seed, epoch, batch int64) int64 {
	z := uint64(seed) ^ uint64(epoch)*0x9e3779b97f4a7c15 ^ uint64(batch)*0xbf58476d1ce4e5b9
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return int64(z ^ (z >> 31))
}
