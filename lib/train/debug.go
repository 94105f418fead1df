package train

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/detlab/detlab/lib/data"
	"github.com/detlab/detlab/lib/nn"
)

// NonFiniteError reports the first NaN or Inf the guard (Config.CheckFinite)
// found: in a loss (Name is its key), a gradient or a parameter after the
// update (Name is the parameter, the first in the model's Params order).
type NonFiniteError struct {
	Step  int
	Where string // "loss", "gradient" or "parameter"
	Name  string
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("train: non-finite %s %q at step %d", e.Where, e.Name, e.Step)
}

func finite32(v float32) bool {
	return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
}

func checkLosses(vals map[string]float32, step int) error {
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !finite32(vals[k]) {
			return &NonFiniteError{Step: step, Where: "loss", Name: k}
		}
	}
	return nil
}

// firstNonFinite names the first parameter whose gradient holds a NaN or Inf.
func firstNonFinite(params []*nn.Param) (bool, string) {
	for _, p := range params {
		if p == nil || p.Grad == nil {
			continue
		}
		for _, v := range p.Grad.Data() {
			if !finite32(v) {
				return false, p.Name
			}
		}
	}
	return true, ""
}

func firstNonFiniteValue(params []*nn.Param) (bool, string) {
	for _, p := range params {
		for _, v := range p.Value.Data() {
			if !finite32(v) {
				return false, p.Name
			}
		}
	}
	return true, ""
}

// GradNorm is one parameter's gradient norm.
type GradNorm struct {
	Name string
	Norm float64
}

// GradNorms returns the L2 norm of every parameter's gradient by name, in
// Params order (parameters without a gradient are left out). Non-finite
// gradients give Inf or NaN norms: the first such entry names the layer
// where the problem shows.
func GradNorms(params []*nn.Param) []GradNorm {
	var out []GradNorm
	for _, p := range params {
		if p == nil || p.Grad == nil {
			continue
		}
		var s float64
		for _, v := range p.Grad.Data() {
			s += float64(v) * float64(v)
		}
		out = append(out, GradNorm{Name: p.Name, Norm: math.Sqrt(s)})
	}
	return out
}

// OverfitResult is the loss trajectory of OverfitOneBatch.
type OverfitResult struct {
	// Losses holds every step's losses (including "loss", the total).
	Losses []map[string]float32
	// First and Last are the total loss at the first and last step.
	First, Last float32
}

// OverfitOneBatch trains t's model for steps optimizer steps on the single
// batch b (the same images every time, no augmentation): a model whose head
// and targets are wired right drives the loss toward zero. It uses t's
// optimizer settings and learning rate (without schedule), updates the
// model and the optimizer state but not the trainer's counters or history,
// and stops with an error naming the first non-finite loss, gradient or
// parameter.
func OverfitOneBatch(ctx context.Context, t *Trainer, b data.Batch, steps int) (*OverfitResult, error) {
	if steps <= 0 {
		return nil, fmt.Errorf("train: OverfitOneBatch needs steps > 0, got %d", steps)
	}
	if len(b.Samples) == 0 {
		return nil, fmt.Errorf("train: OverfitOneBatch: empty batch")
	}
	if m, ok := t.model.(interface{ Train() }); ok {
		m.Train()
	}
	params := t.model.Params()
	res := &OverfitResult{}
	for s := 0; s < steps; s++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		nn.ZeroGrads(params)
		if sm, ok := t.model.(interface{ SeedSampler(int64) }); ok {
			sm.SeedSampler(mixSeed(t.cfg.Seed, -1, int64(s)))
		}
		l, err := t.model.Loss(ctx, b)
		if err != nil {
			return res, fmt.Errorf("train: overfit step %d: %w", s, err)
		}
		vals := l.Values()
		if err := checkLosses(vals, s); err != nil {
			return res, err
		}
		if err := l.Backward(1); err != nil {
			return res, fmt.Errorf("train: overfit step %d: %w", s, err)
		}
		if ok, name := firstNonFinite(params); !ok {
			return res, &NonFiniteError{Step: s, Where: "gradient", Name: name}
		}
		if t.cfg.ClipNorm > 0 {
			ClipGradNorm(params, t.cfg.ClipNorm)
		}
		if err := t.Opt.Step(params, t.cfg.LR); err != nil {
			return res, err
		}
		res.Losses = append(res.Losses, vals)
	}
	nn.ZeroGrads(params)
	res.First, res.Last = res.Losses[0]["loss"], res.Losses[len(res.Losses)-1]["loss"]
	return res, nil
}
