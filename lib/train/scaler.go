package train

import (
	"math"
	"sync"

	"github.com/detlab/detlab/lib/nn"
)

// Scaler is torch.cuda.amp.GradScaler: the loss is multiplied by Scale
// before backward so small reduced-precision gradients do not underflow;
// Unscale divides the gradients by Scale (once per step, before clipping)
// and looks for Inf and NaN; Update halves the scale after a step with
// non-finite gradients (that step is skipped) and doubles it after
// GrowthInterval consecutive good steps.
type Scaler struct {
	// Scale is the current loss scale (init 65536 = 2^16).
	Scale float64
	// GrowthFactor (2), BackoffFactor (0.5) and GrowthInterval (2000) are
	// GradScaler's arguments of the same names.
	GrowthFactor, BackoffFactor float64
	GrowthInterval              int
	// GoodSteps counts consecutive steps with finite gradients since the
	// last change of scale (torch's _growth_tracker).
	GoodSteps int
	// Skipped counts the optimizer steps skipped so far.
	Skipped int
	// Backend, when it implements nn.ScalerBackend (a GPU backend),
	// unscales and checks the gradients where they live; the trainer sets
	// it to the model's backend. Not saved in checkpoints.
	Backend nn.Backend `json:"-"`
}

// NewScaler returns a scaler with GradScaler's defaults.
func NewScaler() *Scaler {
	return &Scaler{Scale: 65536, GrowthFactor: 2, BackoffFactor: 0.5, GrowthInterval: 2000}
}

// Unscale multiplies every gradient by 1/Scale (computed in float64 and
// rounded to float32, as torch's reciprocal of a float32 scale) and reports
// whether all gradients are finite. The name of the first parameter
// holding a non-finite gradient is returned too ("" when all are finite).
func (s *Scaler) Unscale(params []*nn.Param) (finite bool, first string) {
	inv := float32(1 / s.Scale)
	gs := make([][]float32, 0, len(params))
	lengths := make([]int, 0, len(params))
	names := make([]string, 0, len(params))
	for _, p := range params {
		if p == nil || p.Grad == nil {
			continue
		}
		gs = append(gs, p.Grad.Data())
		lengths = append(lengths, p.Grad.Len())
		names = append(names, p.Name)
	}
	if sb, ok := s.Backend.(nn.ScalerBackend); ok {
		finite, first = true, ""
		for i, g := range gs {
			sb.Scale(g, inv)
			if finite && sb.NonFinite(g) {
				finite, first = false, names[i]
			}
		}
		return finite, first
	}
	bad := make([]bool, len(gs))
	var mu sync.Mutex
	parallel(chunks(lengths), func(c chunk) {
		g := gs[c.p][c.lo:c.hi]
		var acc float32 // v-v is 0 for finite v and NaN for Inf and NaN
		for i, v := range g {
			v *= inv
			g[i] = v
			acc += v - v
		}
		if acc != 0 {
			mu.Lock()
			bad[c.p] = true
			mu.Unlock()
		}
	})
	for i, b := range bad {
		if b {
			return false, names[i]
		}
	}
	return true, ""
}

// Update adjusts the scale after a step: backoff when found non-finite
// gradients (and count a skipped step), growth after GrowthInterval good
// steps in a row.
func (s *Scaler) Update(foundInf bool) {
	if foundInf {
		s.Scale *= s.BackoffFactor
		s.GoodSteps = 0
		s.Skipped++
		return
	}
	s.GoodSteps++
	if s.GoodSteps >= s.GrowthInterval {
		s.Scale *= s.GrowthFactor
		s.GoodSteps = 0
	}
}

// ClipGradNorm is torch.nn.utils.clip_grad_norm_ with norm type 2: the
// global norm of all gradients is computed (as the norm of the per-parameter
// norms) and, when it exceeds maxNorm, every gradient is multiplied by
// maxNorm/(norm+1e-6). It returns the norm before clipping (Inf or NaN when
// a gradient is; nothing is then changed, the step will be rejected).
func ClipGradNorm(params []*nn.Param, maxNorm float64) float64 {
	total := GlobalGradNorm(params)
	if math.IsNaN(total) || math.IsInf(total, 0) || maxNorm <= 0 {
		return total
	}
	coef := maxNorm / (total + 1e-6)
	if coef >= 1 {
		return total
	}
	c := float32(coef)
	for _, p := range params {
		if p == nil || p.Grad == nil {
			continue
		}
		g := p.Grad.Data()
		for i := range g {
			g[i] *= c
		}
	}
	return total
}

// GlobalGradNorm is the L2 norm of all gradients together (accumulated in
// float64).
func GlobalGradNorm(params []*nn.Param) float64 {
	var sum float64
	for _, p := range params {
		if p == nil || p.Grad == nil {
			continue
		}
		for _, v := range p.Grad.Data() {
			sum += float64(v) * float64(v)
		}
	}
	return math.Sqrt(sum)
}
