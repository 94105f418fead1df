package nn

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"sync/atomic"

	"github.com/detlab/detlab/lib/tensor"
)

// Param is a learnable tensor with its torchvision name.
//
// A Param counts changes to its values (Version) so that values derived
// from them (packed GEMM panels, bfloat16 copies, Winograd transforms; see
// WeightCache) are rebuilt exactly when they must be. Every library path
// that writes parameter values marks the change: train's SGD step,
// CopyState, the model loaders (fasterrcnn, train checkpoints) and
// StateDict.MarkChanged. Code that writes Value's data itself must call
// MarkChanged afterwards (or StateDict.MarkChanged for the keys it wrote);
// replacing Value, or its storage, is noticed without it.
type Param struct {
	// Name is the state-dict key in the model that created the parameter
	// ("layer1.0.conv1.weight").
	Name string
	// Value holds the parameter; weight loading copies into it.
	Value *tensor.Tensor
	// Grad accumulates gradients across Backward calls; nil until the
	// first one. ZeroGrad clears it.
	Grad *tensor.Tensor
	// Trainable is PyTorch's requires_grad: graphs compute no gradient
	// for a parameter that is not trainable.
	Trainable bool

	version atomic.Uint64
	cache   atomic.Pointer[WeightCache]
}

// changeClock hands out versions: every change anywhere gets a value larger
// than all earlier ones, so the largest version over a set of tensors
// changes whenever any of them changes.
var changeClock atomic.Uint64

// Version returns the parameter's change stamp: 0 until the first
// MarkChanged, then a process-wide increasing value that differs after
// every MarkChanged.
func (p *Param) Version() uint64 { return p.version.Load() }

// MarkChanged records that Value's contents changed, so every value cached
// from them (Cache) is rebuilt at its next use. Library code that writes
// parameters calls it; call it after writing Value.Data() yourself.
func (p *Param) MarkChanged() { p.version.Store(changeClock.Add(1)) }

// NewParam returns a trainable parameter holding a zero tensor of shape.
func NewParam(name string, shape ...int) *Param {
	return &Param{Name: name, Value: tensor.New(shape...), Trainable: true}
}

// ZeroGrad sets the accumulated gradient to zero.
func (p *Param) ZeroGrad() {
	if p.Grad != nil {
		clear(p.Grad.Data())
	}
}

// ZeroGrads clears the gradients of ps.
func ZeroGrads(ps []*Param) {
	for _, p := range ps {
		p.ZeroGrad()
	}
}

// StateDict is an ordered map from torchvision state-dict keys to the live
// tensors of a model (parameters and buffers): writing into a tensor changes
// the model. Weight loaders copy into Tensors[key].
type StateDict struct {
	// Keys lists the names in module order, as torch's state_dict() does.
	Keys []string
	// Tensors maps each key to the model's own tensor.
	Tensors map[string]*tensor.Tensor
	params  map[string]*Param
	// marks holds, per buffer key, what records a change to it (a
	// BatchNorm's MarkStatsChanged).
	marks map[string]func()
}

// NewStateDict returns an empty state dict.
func NewStateDict() *StateDict {
	return &StateDict{Tensors: map[string]*tensor.Tensor{}, params: map[string]*Param{}, marks: map[string]func(){}}
}

// AddParam appends a parameter under key.
func (sd *StateDict) AddParam(key string, p *Param) {
	sd.add(key, p.Value)
	sd.params[key] = p
}

// AddBuffer appends a buffer (running statistics) under key.
func (sd *StateDict) AddBuffer(key string, t *tensor.Tensor) { sd.add(key, t) }

// addBufferMarked appends a buffer whose changes mark records.
func (sd *StateDict) addBufferMarked(key string, t *tensor.Tensor, mark func()) {
	sd.add(key, t)
	if sd.marks == nil {
		sd.marks = map[string]func(){}
	}
	sd.marks[key] = mark
}

// MarkChanged records that the tensors under keys (every key when none is
// given) were written: their parameters' versions move on (Param.Version)
// and BatchNorm running statistics theirs (BatchNorm2d.StatsVersion), so
// cached derived weights are rebuilt. Weight loaders call it after copying
// into Tensors; call it after writing Tensors[key] yourself. Unknown keys
// are ignored.
func (sd *StateDict) MarkChanged(keys ...string) {
	if len(keys) == 0 {
		keys = sd.Keys
	}
	for _, k := range keys {
		if p := sd.params[k]; p != nil {
			p.MarkChanged()
		}
		if m := sd.marks[k]; m != nil {
			m()
		}
	}
}

func (sd *StateDict) add(key string, t *tensor.Tensor) {
	if _, dup := sd.Tensors[key]; !dup {
		sd.Keys = append(sd.Keys, key)
	}
	sd.Tensors[key] = t
}

// Param returns the parameter stored under key, or nil for a buffer or an
// unknown key.
func (sd *StateDict) Param(key string) *Param { return sd.params[key] }

// Len returns the number of entries.
func (sd *StateDict) Len() int { return len(sd.Keys) }

// Shapes returns "key shape" lines, one per entry, for printing.
func (sd *StateDict) Shapes() string {
	var b strings.Builder
	for _, k := range sd.Keys {
		fmt.Fprintf(&b, "%s %v\n", k, sd.Tensors[k].Shape())
	}
	return b.String()
}

// Module is a layer or a model: something with parameters and buffers
// under torchvision's names.
type Module interface {
	// Params returns the parameters in state-dict order.
	Params() []*Param
	// AddState appends the module's parameters and buffers to sd, each key
	// prefixed with prefix ("layer1.0.conv1.").
	AddState(sd *StateDict, prefix string)
}

// State returns m's state dict with keys under prefix ("" for none).
func State(m Module, prefix string) *StateDict {
	sd := NewStateDict()
	m.AddState(sd, prefix)
	return sd
}

// CopyState copies every tensor of src into the entry of dst with the same
// key, checking that each key exists and shapes agree; it returns an error
// listing missing, unexpected and mis-shaped keys. Use it to move weights
// between models; lib/weights loads files.
func CopyState(dst *StateDict, src map[string]*tensor.Tensor) error {
	var missing, unexpected, shape []string
	for _, k := range dst.Keys {
		s, ok := src[k]
		if !ok {
			missing = append(missing, k)
			continue
		}
		d := dst.Tensors[k]
		if s.Len() != d.Len() || (s.Dims() != 0 && d.Dims() != 0 && !tensor.SameShape(s.Shape(), d.Shape())) {
			shape = append(shape, fmt.Sprintf("%s %v vs %v", k, s.Shape(), d.Shape()))
		}
	}
	for k := range src {
		if _, ok := dst.Tensors[k]; !ok {
			unexpected = append(unexpected, k)
		}
	}
	if len(missing)+len(unexpected)+len(shape) > 0 {
		return fmt.Errorf("nn: state dict mismatch: missing %v, unexpected %v, shape %v", missing, unexpected, shape)
	}
	for _, k := range dst.Keys {
		copy(dst.Tensors[k].Data(), src[k].Data())
	}
	dst.MarkChanged()
	return nil
}

// KaimingUniform fills t with U(-b, b), b = gain*sqrt(3/fanIn), gain =
// sqrt(2/(1+a^2)): torch.nn.init.kaiming_uniform_(t, a) with fan_in mode.
// Conv2d and Linear use a = sqrt(5) by default.
func KaimingUniform(t *tensor.Tensor, fanIn int, a float64, rng *rand.Rand) {
	gain := math.Sqrt(2 / (1 + a*a))
	bound := gain * math.Sqrt(3/float64(fanIn))
	Uniform(t, -bound, bound, rng)
}

// KaimingNormal fills t with N(0, std^2), std = sqrt(2)/sqrt(fan):
// kaiming_normal_ with nonlinearity relu (ResNet uses fan = fan_out).
func KaimingNormal(t *tensor.Tensor, fan int, rng *rand.Rand) {
	std := math.Sqrt2 / math.Sqrt(float64(fan))
	for i := range t.Data() {
		t.Data()[i] = float32(rng.NormFloat64() * std)
	}
}

// Uniform fills t with U(lo, hi).
func Uniform(t *tensor.Tensor, lo, hi float64, rng *rand.Rand) {
	for i := range t.Data() {
		t.Data()[i] = float32(lo + (hi-lo)*rng.Float64())
	}
}

// Fill sets every element of t to v.
func Fill(t *tensor.Tensor, v float32) {
	for i := range t.Data() {
		t.Data()[i] = v
	}
}

// Normal fills t with N(mean, std^2) (torch.nn.init.normal_; detection
// heads use std 0.01 and zero bias).
func Normal(t *tensor.Tensor, mean, std float64, rng *rand.Rand) {
	for i := range t.Data() {
		t.Data()[i] = float32(mean + std*rng.NormFloat64())
	}
}
