package nn

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/detlab/detlab/lib/internal/freelist"
	"github.com/detlab/detlab/lib/tensor"
)

// BNMode selects how a BatchNorm2d normalises.
type BNMode int

const (
	// BNEval normalises with the running statistics; gamma and beta still
	// receive gradients (torch's model.eval()).
	BNEval BNMode = iota
	// BNTrain normalises with the batch statistics (biased variance) and
	// updates the running statistics (unbiased variance, momentum), as
	// torch's model.train().
	BNTrain
	// BNFrozen is torchvision's FrozenBatchNorm2d: a fixed affine map from
	// the running statistics, no parameter gradients, never updated.
	BNFrozen
)

// String names the mode.
func (m BNMode) String() string {
	switch m {
	case BNEval:
		return "eval"
	case BNTrain:
		return "train"
	case BNFrozen:
		return "frozen"
	}
	return fmt.Sprintf("BNMode(%d)", int(m))
}

// BatchNorm2d is torch.nn.BatchNorm2d (affine, tracking running stats) with
// a frozen mode matching torchvision.ops.FrozenBatchNorm2d.
type BatchNorm2d struct {
	C        int
	Eps      float64 // 1e-5
	Momentum float64 // 0.1
	Mode     BNMode

	Weight, Bias *Param // gamma (init 1), beta (init 0)
	// RunningMean (init 0) and RunningVar (init 1), shape (C).
	RunningMean, RunningVar *tensor.Tensor
	// NumBatchesTracked is a float32 scalar (shape []) counting train-mode
	// forwards; weight files store it as int64.
	NumBatchesTracked *tensor.Tensor

	statsVersion atomic.Uint64
	// statsQueued: a BatchNormTrainBackend forward may still be writing
	// RunningMean and RunningVar in queued device work.
	statsQueued bool
}

// StatsVersion returns the change stamp of the running statistics (see
// Param.Version): it moves on at every train-mode forward, every load
// through the state dict (StateDict.MarkChanged, CopyState) and every
// MarkStatsChanged. Values derived from the statistics (a folded
// convolution) are keyed by it together with Weight's and Bias's versions.
func (bn *BatchNorm2d) StatsVersion() uint64 { return bn.statsVersion.Load() }

// MarkStatsChanged records that RunningMean or RunningVar were written;
// call it after writing them yourself.
func (bn *BatchNorm2d) MarkStatsChanged() { bn.statsVersion.Store(changeClock.Add(1)) }

// Version returns the largest change stamp over the BatchNorm's affine
// parameters and running statistics: it changes whenever any of them does.
func (bn *BatchNorm2d) Version() uint64 {
	return max(bn.Weight.Version(), bn.Bias.Version(), bn.StatsVersion())
}

// NewBatchNorm2d returns a BatchNorm over c channels in eval mode, with
// parameters named name+".weight" etc.
func NewBatchNorm2d(name string, c int) (*BatchNorm2d, error) {
	if c <= 0 {
		return nil, fmt.Errorf("nn: BatchNorm2d %s: %d channels", name, c)
	}
	bn := &BatchNorm2d{C: c, Eps: 1e-5, Momentum: 0.1,
		Weight: NewParam(joinName(name, "weight"), c), Bias: NewParam(joinName(name, "bias"), c),
		RunningMean: tensor.New(c), RunningVar: tensor.New(c), NumBatchesTracked: tensor.New()}
	Fill(bn.Weight.Value, 1)
	Fill(bn.RunningVar, 1)
	return bn, nil
}

// SetMode switches between train and eval; a frozen BatchNorm stays frozen
// (its parameters are then not trainable).
func (bn *BatchNorm2d) SetMode(m BNMode) {
	if bn.Mode == BNFrozen && m != BNFrozen {
		return
	}
	bn.Mode = m
	if m == BNFrozen {
		bn.Weight.Trainable = false
		bn.Bias.Trainable = false
	}
}

// OutputShape returns in unchanged after checking it.
func (bn *BatchNorm2d) OutputShape(in []int) ([]int, error) {
	if err := bn.checkInput(in); err != nil {
		return nil, err
	}
	return append([]int(nil), in...), nil
}

// checkInput is OutputShape's check without the copy; in does not escape
// (the messages print copies), so a caller's stack array stays there.
func (bn *BatchNorm2d) checkInput(in []int) error {
	if len(in) != 4 {
		return fmt.Errorf("nn: BatchNorm2d %s: input must be NCHW, got shape %v", bn.Weight.Name, copyShape(in))
	}
	if in[1] != bn.C {
		return fmt.Errorf("nn: BatchNorm2d %s: input has %d channels, want %d", bn.Weight.Name, in[1], bn.C)
	}
	if numel(in) == 0 {
		return fmt.Errorf("nn: BatchNorm2d %s: empty input shape %v", bn.Weight.Name, copyShape(in))
	}
	return nil
}

// Forward normalises x.
func (bn *BatchNorm2d) Forward(g *Graph, x *Var) (*Var, error) { return bn.forward(g, x, false) }

// ForwardReLU is ReLU(BatchNorm(x)) in one pass over the data.
func (bn *BatchNorm2d) ForwardReLU(g *Graph, x *Var) (*Var, error) { return bn.forward(g, x, true) }

func (bn *BatchNorm2d) forward(g *Graph, x *Var, relu bool) (*Var, error) {
	shape := x.Shape()
	if err := bn.checkInput(shape); err != nil {
		return nil, err
	}
	n, c, hw := shape[0], shape[1], shape[2]*shape[3]
	m := n * hw
	gamma, beta := bn.Weight.Value.Data(), bn.Bias.Value.Data()
	if tb, ok := g.backend.(BatchNormTrainBackend); ok && bn.Mode == BNTrain {
		return bn.forwardOn(g, tb, x, relu)
	}
	if bn.statsQueued {
		// A device train-mode forward updated the running statistics in
		// queued work: wait for it before reading them here.
		g.hostSync()
		bn.statsQueued = false
	}
	// The statistics (kept for backward) and the affine coefficients
	// live in memory g owns until Release: with an arena, recycled.
	stats := g.newFloat64s(3 * c)
	mean, invstd, variance := stats[:c:c], stats[c:2*c:2*c], stats[2*c:]
	train := bn.Mode == BNTrain
	if train {
		if m < 2 {
			return nil, fmt.Errorf("nn: BatchNorm2d %s: train mode needs more than one value per channel, input shape %v", bn.Weight.Name, shape)
		}
		g.backend.ChannelStats(x.Value.Data(), n, c, hw, mean, variance)
		rm, rv := bn.RunningMean.Data(), bn.RunningVar.Data()
		mom := bn.Momentum
		unbias := float64(m) / float64(m-1)
		for i := range c {
			invstd[i] = 1 / math.Sqrt(variance[i]+bn.Eps)
			rm[i] = float32((1-mom)*float64(rm[i]) + mom*mean[i])
			rv[i] = float32((1-mom)*float64(rv[i]) + mom*variance[i]*unbias)
		}
		bn.NumBatchesTracked.Data()[0]++
		bn.MarkStatsChanged()
	} else {
		rm, rv := bn.RunningMean.Data(), bn.RunningVar.Data()
		for i := range c {
			mean[i] = float64(rm[i])
			invstd[i] = 1 / math.Sqrt(float64(rv[i])+bn.Eps)
		}
	}
	affine := g.scratch().Get(2 * c)
	scale, shift := affine[:c:c], affine[c:]
	for i := range c {
		s := float64(gamma[i]) * invstd[i]
		scale[i] = float32(s)
		shift[i] = float32(float64(beta[i]) - mean[i]*s)
	}
	out := g.newTensorNoZero(shape...)
	g.backend.ChannelAffine(x.Value.Data(), out.Data(), n, c, hw, scale, shift, relu)

	var wv, bv *Var
	if bn.Mode != BNFrozen {
		wv, bv = g.Param(bn.Weight), g.Param(bn.Bias)
	}
	inputs := g.varList(x, wv, bv)
	if !g.records(inputs) {
		return g.constant(out), nil
	}
	op := g.opLists().bn.take()
	*op = bnOp{g: g, x: x.Value.Data(), out: out.Data(), n: n, c: c, hw: hw,
		mean: mean, invstd: invstd, gamma: gamma, train: train, relu: relu}
	return g.push(out, inputs, nil, op), nil
}

// forwardOn is the train-mode forward on a BatchNormTrainBackend: the
// statistics stay in backend memory (stats, owned by g until Release) and
// the backward reads them there; nothing waits for the device.
func (bn *BatchNorm2d) forwardOn(g *Graph, tb BatchNormTrainBackend, x *Var, relu bool) (*Var, error) {
	shape := x.Shape()
	n, c, hw := shape[0], shape[1], shape[2]*shape[3]
	if n*hw < 2 {
		return nil, fmt.Errorf("nn: BatchNorm2d %s: train mode needs more than one value per channel, input shape %v", bn.Weight.Name, shape)
	}
	stats := g.newTensorNoZero(BatchNormStatsPerChannel * c).Data()
	out := g.newTensorNoZero(shape...)
	tb.BatchNormTrainForward(x.Value.Data(), out.Data(), n, c, hw, bn.Weight.Value.Data(), bn.Bias.Value.Data(),
		bn.RunningMean.Data(), bn.RunningVar.Data(), stats, bn.Momentum, bn.Eps, relu)
	bn.statsQueued = true
	bn.NumBatchesTracked.Data()[0]++
	bn.MarkStatsChanged()
	wv, bv := g.Param(bn.Weight), g.Param(bn.Bias)
	inputs := g.varList(x, wv, bv)
	if !g.records(inputs) {
		return g.constant(out), nil
	}
	op := g.opLists().bn.take()
	*op = bnOp{g: g, x: x.Value.Data(), out: out.Data(), n: n, c: c, hw: hw,
		stats: stats, device: tb, gamma: bn.Weight.Value.Data(), train: true, relu: relu}
	return g.push(out, inputs, nil, op), nil
}

// bnOp is BatchNorm2d's (and with relu, ReLU(BatchNorm)'s) backward:
// inputs x, weight, bias.
type bnOp struct {
	g            *Graph
	x, out       []float32
	n, c, hw     int
	mean, invstd []float64
	gamma        []float32
	train, relu  bool
	// stats and device: a BatchNormTrainBackend forward's statistics
	// (mean and invstd unused), for device's backward.
	stats  []float32
	device BatchNormTrainBackend
}

func (o *bnOp) backward(gy *tensor.Tensor, gin []*tensor.Tensor) {
	g := o.g
	dy := gy.Data()
	if o.device != nil {
		o.device.BatchNormTrainBackward(o.x, o.out, dy, gradData(gin[0]), gradData(gin[1]), gradData(gin[2]),
			o.n, o.c, o.hw, o.stats, o.gamma, o.relu)
		return
	}
	if o.relu {
		// Mask in a scratch copy: gy belongs to the graph's output.
		masked := g.scratch().Get(len(dy))
		defer g.scratch().Put(masked)
		out := o.out
		for i, d := range dy {
			if out[i] > 0 {
				masked[i] = d
			} else {
				masked[i] = 0
			}
		}
		dy = masked
	}
	dx, dgamma, dbeta := gradData(gin[0]), gradData(gin[1]), gradData(gin[2])
	if bb, ok := g.backend.(BatchNormBackend); ok {
		bb.BatchNormBackward(o.x, dy, dx, dgamma, dbeta, o.n, o.c, o.hw, o.mean, o.invstd, o.gamma, o.train)
	} else {
		bnBackward(o.x, dy, dx, dgamma, dbeta, o.n, o.c, o.hw, o.mean, o.invstd, o.gamma, o.train)
	}
}

// bnBackward adds BatchNorm's gradients. With batch statistics (train) the
// input gradient includes the paths through the mean and variance:
// dx = gamma*invstd*(dy - mean(dy) - xhat*mean(dy*xhat)).
func bnBackward(x, dy, dx, dgamma, dbeta []float32, n, c, hw int, mean, invstd []float64, gamma []float32, train bool) {
	runPooled(c, &bnBackwardJobs, bnBackwardJob{x: x, dy: dy, dx: dx, dgamma: dgamma, dbeta: dbeta,
		n: n, c: c, hw: hw, mean: mean, invstd: invstd, gamma: gamma, train: train})
}

// bnBackwardJob is bnBackward over channels [c0, c1).
type bnBackwardJob struct {
	x, dy, dx, dgamma, dbeta []float32
	n, c, hw                 int
	mean, invstd             []float64
	gamma                    []float32
	train                    bool
}

var bnBackwardJobs freelist.List[bnBackwardJob]

func (j *bnBackwardJob) run(c0, c1 int) {
	x, dy, dx, dgamma, dbeta := j.x, j.dy, j.dx, j.dgamma, j.dbeta
	n, c, hw := j.n, j.c, j.hw
	mean, invstd, gamma, train := j.mean, j.invstd, j.gamma, j.train
	m := float64(n * hw)
	for ch := c0; ch < c1; ch++ {
		mu, is := mean[ch], invstd[ch]
		var sdy, sdyx float64
		if train || dgamma != nil || dbeta != nil {
			for b := 0; b < n; b++ {
				off := (b*c + ch) * hw
				xs, ds := x[off:off+hw], dy[off:off+hw]
				for i, d := range ds {
					dd := float64(d)
					sdy += dd
					sdyx += dd * (float64(xs[i]) - mu)
				}
			}
			sdyx *= is
		}
		if dgamma != nil {
			dgamma[ch] += float32(sdyx)
		}
		if dbeta != nil {
			dbeta[ch] += float32(sdy)
		}
		if dx == nil {
			continue
		}
		k := float64(gamma[ch]) * is
		if !train {
			kf := float32(k)
			for b := 0; b < n; b++ {
				off := (b*c + ch) * hw
				xd, ds := dx[off:off+hw], dy[off:off+hw]
				for i, d := range ds {
					xd[i] += d * kf
				}
			}
			continue
		}
		mdy, mdyx := sdy/m, sdyx/m
		for b := 0; b < n; b++ {
			off := (b*c + ch) * hw
			xs, xd, ds := x[off:off+hw], dx[off:off+hw], dy[off:off+hw]
			for i, d := range ds {
				xhat := (float64(xs[i]) - mu) * is
				xd[i] += float32(k * (float64(d) - mdy - xhat*mdyx))
			}
		}
	}
}

// Params returns gamma and beta (none when frozen: FrozenBatchNorm2d holds
// them as buffers).
func (bn *BatchNorm2d) Params() []*Param {
	if bn.Mode == BNFrozen {
		return nil
	}
	return []*Param{bn.Weight, bn.Bias}
}

// AddState adds weight, bias, running_mean, running_var and
// num_batches_tracked under prefix (torchvision's keys). The frozen mode
// keeps num_batches_tracked too, so a torchvision resnet18 state dict loads
// strictly in every mode.
func (bn *BatchNorm2d) AddState(sd *StateDict, prefix string) {
	sd.AddParam(prefix+"weight", bn.Weight)
	sd.AddParam(prefix+"bias", bn.Bias)
	sd.addBufferMarked(prefix+"running_mean", bn.RunningMean, bn.MarkStatsChanged)
	sd.addBufferMarked(prefix+"running_var", bn.RunningVar, bn.MarkStatsChanged)
	sd.AddBuffer(prefix+"num_batches_tracked", bn.NumBatchesTracked)
}
