package train

import (
	"fmt"
	"math"
	"strings"

	"github.com/detlab/detlab/lib/nn"
)

// SGD is torch.optim.SGD with momentum, dampening, Nesterov momentum and
// weight decay, following PyTorch's update rule exactly, per element:
//
//	d = g + wd*p                          (weight decay, when wd != 0)
//	buf = d                               (first step)
//	buf = momentum*buf + (1-dampening)*d  (later steps)
//	d = d + momentum*buf  (Nesterov)  or  d = buf
//	p = p - lr*d
//
// Momentum buffers are kept per parameter name, so a checkpoint can store
// them. Parameters whose Grad is nil or whose Trainable is false are skipped
// (torch skips parameters whose grad is None).
type SGD struct {
	// Momentum, Dampening and Nesterov are torch's momentum, dampening
	// and nesterov (Nesterov needs Momentum > 0 and Dampening 0).
	Momentum, Dampening float64
	Nesterov            bool
	// WeightDecay is the L2 penalty added to the gradient.
	WeightDecay float64
	// NoDecay, when not nil, selects parameters (by name) that get no
	// weight decay: torchvision's norm_weight_decay=0 and bias groups.
	// NormsAndBiases is the usual rule.
	NoDecay func(name string) bool
	// Buffers holds the momentum buffer of each parameter by name.
	Buffers map[string][]float32
	// Backend, when it implements nn.OptimizerBackend (a GPU backend),
	// runs the update where the parameters live, one call per parameter,
	// with new momentum buffers from it when it is an nn.Allocator; nil or
	// any other backend updates on the host. New sets it to the model's
	// backend when the model has one (Detector does). The device update
	// computes 1-Dampening in float32: bit-identical to the host when
	// Dampening is a float32 value (0, the default, is).
	Backend nn.Backend
}

// NormsAndBiases reports whether name is a bias or a BatchNorm parameter
// (torchvision names BatchNorms bn1, bn2, downsample.1, and the Faster
// R-CNN body's numbered modules 1, 4.0.bn1, ...): the parameters usually
// exempted from weight decay. It matches names ending in ".bias", and
// ".weight" of modules called bn*, norm* or downsample.1.
func NormsAndBiases(name string) bool {
	if strings.HasSuffix(name, ".bias") {
		return true
	}
	if !strings.HasSuffix(name, ".weight") {
		return false
	}
	mod := strings.TrimSuffix(name, ".weight")
	last := mod[strings.LastIndex(mod, ".")+1:]
	return strings.HasPrefix(last, "bn") || strings.HasPrefix(last, "norm") ||
		strings.HasSuffix(mod, "downsample.1") || mod == "backbone.1"
}

// Validate reports settings torch would reject.
func (o *SGD) Validate() error {
	switch {
	case o.Momentum < 0 || math.IsNaN(o.Momentum):
		return fmt.Errorf("train: invalid momentum %v", o.Momentum)
	case o.WeightDecay < 0 || math.IsNaN(o.WeightDecay):
		return fmt.Errorf("train: invalid weight decay %v", o.WeightDecay)
	case o.Nesterov && (o.Momentum <= 0 || o.Dampening != 0):
		return fmt.Errorf("train: Nesterov momentum requires a momentum and zero dampening")
	}
	return nil
}

// Step updates every parameter with learning rate lr.
func (o *SGD) Step(params []*nn.Param, lr float64) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if o.Buffers == nil {
		o.Buffers = map[string][]float32{}
	}
	type job struct {
		name   string
		w, g   []float32
		wd     float32
		first  bool
		buffer []float32
	}
	var jobs []job
	var lengths []int
	var updated []*nn.Param
	for _, p := range params {
		if p == nil || !p.Trainable || p.Grad == nil {
			continue
		}
		w, g := p.Value.Data(), p.Grad.Data()
		if len(w) != len(g) {
			return fmt.Errorf("train: parameter %q has %d values and %d gradients", p.Name, len(w), len(g))
		}
		j := job{name: p.Name, w: w, g: g, wd: float32(o.WeightDecay)}
		if o.NoDecay != nil && o.NoDecay(p.Name) {
			j.wd = 0
		}
		if o.Momentum != 0 {
			buf, ok := o.Buffers[p.Name]
			if !ok || len(buf) != len(w) {
				buf = o.newBuffer(len(w))
				o.Buffers[p.Name] = buf
				j.first = true
			}
			j.buffer = buf
		}
		jobs = append(jobs, j)
		lengths = append(lengths, len(w))
		updated = append(updated, p)
	}
	// The values change below: derived weights cached from them
	// (nn.WeightCache) must be rebuilt.
	defer func() {
		for _, p := range updated {
			p.MarkChanged()
		}
	}()
	if ob, ok := o.Backend.(nn.OptimizerBackend); ok {
		for _, j := range jobs {
			ob.SGDStep(j.w, j.g, j.buffer, float32(lr), float32(o.Momentum), float32(o.Dampening), j.wd, o.Nesterov, j.first)
		}
		// Return with the parameters updated, readable by host code, on an
		// asynchronous device backend too.
		if err := nn.Sync(o.Backend); err != nil {
			return fmt.Errorf("train: SGD step: %w", err)
		}
		return nil
	}
	parallel(chunks(lengths), func(c chunk) {
		j := jobs[c.p]
		var buf []float32
		if j.buffer != nil {
			buf = j.buffer[c.lo:c.hi]
		}
		o.update(j.w[c.lo:c.hi], j.g[c.lo:c.hi], buf, j.first, j.wd, float32(lr))
	})
	return nil
}

// update applies one step to w in float32, element by element as torch's
// single-tensor path; buf is the momentum buffer (nil without momentum) and
// first marks its first step.
func (o *SGD) update(w, g, buf []float32, first bool, wd, lr float32) {
	mom, damp := float32(o.Momentum), float32(1-o.Dampening)
	if buf == nil {
		for i := range w {
			d := g[i]
			if wd != 0 {
				d += wd * w[i]
			}
			w[i] -= lr * d
		}
		return
	}
	for i := range w {
		d := g[i]
		if wd != 0 {
			d += wd * w[i]
		}
		if first {
			buf[i] = d
		} else {
			buf[i] = mom*buf[i] + damp*d
		}
		if o.Nesterov {
			d += mom * buf[i]
		} else {
			d = buf[i]
		}
		w[i] -= lr * d
	}
}

// newBuffer returns a zeroed momentum buffer: from the backend's memory when
// the update runs there, else Go memory.
func (o *SGD) newBuffer(n int) []float32 {
	if _, ok := o.Backend.(nn.OptimizerBackend); ok {
		if a, ok := o.Backend.(nn.Allocator); ok {
			return a.Alloc(n)
		}
	}
	return make([]float32, n)
}
