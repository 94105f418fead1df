package train

import (
	"fmt"
	"math"
	"sort"
)

// Schedule gives the learning rate as a factor of the base rate at a
// position in training: epoch counts completed epochs (torch's per-epoch
// scheduler.step() calls) and step counts optimizer steps since the start
// (per-iteration stepping). Each schedule reads the counter torch's would
// be stepped with; the factor is the closed form of torch's scheduler.
type Schedule interface {
	Factor(epoch, step int) float64
}

// ScheduleFunc adapts a function to Schedule.
type ScheduleFunc func(epoch, step int) float64

// Factor implements Schedule.
func (f ScheduleFunc) Factor(epoch, step int) float64 { return f(epoch, step) }

// Constant keeps the base learning rate.
func Constant() Schedule { return ScheduleFunc(func(int, int) float64 { return 1 }) }

// StepLR is torch.optim.lr_scheduler.StepLR stepped once per epoch:
// gamma^(epoch / stepSize).
func StepLR(stepSize int, gamma float64) Schedule {
	return ScheduleFunc(func(epoch, _ int) float64 {
		if stepSize <= 0 {
			return 1
		}
		return math.Pow(gamma, float64(epoch/stepSize))
	})
}

// MultiStepLR is torch's MultiStepLR stepped once per epoch: gamma to the
// number of milestones reached (milestones <= epoch).
func MultiStepLR(milestones []int, gamma float64) Schedule {
	ms := append([]int(nil), milestones...)
	sort.Ints(ms)
	return ScheduleFunc(func(epoch, _ int) float64 {
		n := sort.SearchInts(ms, epoch+1)
		return math.Pow(gamma, float64(n))
	})
}

// Cosine is CosineAnnealingLR's closed form with eta_min as a fraction of
// the base rate: minFactor + (1-minFactor)*(1+cos(pi*t/tMax))/2, where t is
// the epoch, or the optimizer step when perStep is set (torch users step it
// per iteration with T_max = total iterations). Past tMax the curve
// continues as torch's closed form does (it rises again).
func Cosine(tMax int, minFactor float64, perStep bool) Schedule {
	return ScheduleFunc(func(epoch, step int) float64 {
		if tMax <= 0 {
			return 1
		}
		t := epoch
		if perStep {
			t = step
		}
		return minFactor + (1-minFactor)*(1+math.Cos(math.Pi*float64(t)/float64(tMax)))/2
	})
}

// Warmup multiplies s by torchvision's reference warm-up, LinearLR stepped
// per iteration over the first iters optimizer steps: the factor rises
// linearly from start (torchvision: 1/1000) to 1 at step iters, then stays 1.
// A nil s means a constant rate.
func Warmup(s Schedule, iters int, start float64) Schedule {
	if s == nil {
		s = Constant()
	}
	return ScheduleFunc(func(epoch, step int) float64 {
		f := 1.0
		if iters > 0 && step < iters {
			f = start + (1-start)*float64(step)/float64(iters)
		}
		return s.Factor(epoch, step) * f
	})
}

func checkFactor(f float64, epoch, step int) error {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return fmt.Errorf("train: schedule gives factor %v at epoch %d step %d", f, epoch, step)
	}
	return nil
}
