package nn

// Optional Backend extensions for device backends (lib/cuda). A backend
// whose tensors live in device memory wants every pass over them on the
// device, not only the heavy kernels of Backend; these interfaces name the
// remaining work so that operations can ask for it by type assertion and
// otherwise keep their host loops. ReLU, Add and AddReLU (forward and
// backward) use ElementwiseBackend when the graph's backend has it;
// autocast rounding goes through Graph.RoundedCopy, which uses
// RoundingBackend; BatchNorm2d uses BatchNormTrainBackend in train mode
// (forward and backward, no host statistics) and otherwise
// BatchNormBackend for its backward; lib/train's
// SGD uses OptimizerBackend (and Allocator for its momentum buffers) and its
// Scaler ScalerBackend when given the model's backend; Graph.NewTensor
// clears new tensors with Zeroer, and so does ZeroGradsOn; the fused
// ConvBN's backward uses ConvBNBackend and Linear uses BiasBackend.

// ElementwiseBackend runs ReLU, the residual sum and the ReLU gradient on
// the backend, with the host loops' semantics (ReLU and AddReLU pass NaN
// on and map every other non-positive value, -0 included, to +0).
type ElementwiseBackend interface {
	// Add writes y = a + b, then max(y, 0) when relu, over len(y)
	// elements; y may alias a or b.
	Add(a, b, y []float32, relu bool)
	// ReLU writes y = max(x, 0) over len(y) elements; y may alias x.
	ReLU(x, y []float32)
	// ReLUBackward adds dy into dx where the ReLU output y is positive,
	// over len(dx) elements.
	ReLUBackward(y, dy, dx []float32)
}

// RoundingBackend rounds to an autocast precision on the backend: Round is
// Precision.RoundSlice (dst may alias src).
type RoundingBackend interface {
	Round(p Precision, dst, src []float32)
}

// BatchNormBackend runs BatchNorm2d's backward on the backend. lib/cuda's
// Backend implements it with its existing kernels and GEMM.
type BatchNormBackend interface {
	// BatchNormBackward adds BatchNorm's gradients for x of shape
	// (n, c, hw) and output gradient dy, given the forward's per-channel
	// mean and invstd (1/sqrt(var+eps)) and the weight gamma:
	// dbeta[c] += sum(dy), dgamma[c] += sum(dy*xhat) with
	// xhat = (x-mean)*invstd, and dx += gamma*invstd*(dy - mean(dy) -
	// xhat*mean(dy*xhat)) with batch statistics (train), or
	// dx += gamma*invstd*dy with running ones. Any of dx, dgamma and dbeta
	// may be nil. Sums may run in float32 (the host loop's are float64).
	BatchNormBackward(x, dy, dx, dgamma, dbeta []float32, n, c, hw int, mean, invstd []float64, gamma []float32, train bool)
}

// OptimizerBackend runs torch.optim.SGD's update on the backend, element by
// element as lib/train's SGD: d = g + weightDecay*p; with momentum, buf = d
// on the first step, else momentum*buf + (1-dampening)*d, then d =
// d + momentum*buf (nesterov) or buf; finally p -= lr*d. buf is nil without
// momentum.
type OptimizerBackend interface {
	SGDStep(p, g, buf []float32, lr, momentum, dampening, weightDecay float32, nesterov, first bool)
}

// ScalerBackend runs a gradient scaler's unscale on the backend: Scale
// multiplies x by s in float32; NonFinite reports whether x holds an Inf or
// a NaN.
type ScalerBackend interface {
	Scale(x []float32, s float32)
	NonFinite(x []float32) bool
}

// Allocator hands out zeroed float32 buffers in a backend's memory (for a
// device backend, memory both the host and the device address).
type Allocator interface {
	Alloc(n int) []float32
}

// Zeroer clears buffers on the backend: Zero sets every element of x to
// +0. Graph.NewTensor uses it when the graph's backend has it, so that a
// device backend clears its memory where its kernels will next write it
// (lib/cuda: cuMemsetD32Async on a managed buffer instead of a host loop
// that migrates the pages to the host first).
type Zeroer interface {
	Zero(x []float32)
}

// zero clears x with g's backend when it is a Zeroer, else on the host.
func (g *Graph) zero(x []float32) {
	if z, ok := g.backend.(Zeroer); ok {
		z.Zero(x)
		return
	}
	clear(x)
}

// elementwise returns g's backend as an ElementwiseBackend, or nil when it
// has none (the host loops run).
func (g *Graph) elementwise() ElementwiseBackend {
	eb, _ := g.backend.(ElementwiseBackend)
	return eb
}

// round writes src rounded to g's autocast precision into dst (len(dst) >=
// len(src); dst may alias src): on the backend when it implements
// RoundingBackend, else Precision.RoundSlice on the host.
func (g *Graph) round(dst, src []float32) { g.roundAs(g.autocast, dst, src) }

// roundAs is round to precision p (a backward pass rounds to the
// precision its forward pass captured).
func (g *Graph) roundAs(p Precision, dst, src []float32) {
	if p == Float32 {
		copy(dst, src)
		return
	}
	if rb, ok := g.backend.(RoundingBackend); ok {
		rb.Round(p, dst, src)
		return
	}
	p.RoundSlice(dst, src)
}

// ConvBNBackend runs the fused ConvBN's backward epilogue on the backend:
// the frozen BatchNorm's scale and the ReLU mask applied to the output
// gradient, and the residual's gradient.
type ConvBNBackend interface {
	// ConvBNBackward takes a fused ConvBN's output y (n, k, hw) and its
	// gradient dy. With pass = !relu || y > 0 (false for NaN), it adds dy
	// into dres where pass (elsewhere dres is untouched, so -0 stays -0)
	// and writes dc = (pass ? dy : +0) * scale[c] in float32. dc or dres
	// may be nil (not written); dc may alias dy, dres aliases neither.
	ConvBNBackward(dy, y, scale, dc, dres []float32, n, k, hw int, relu bool)
}

// BiasBackend runs Linear's bias forward and gradient on the backend, for
// row-major matrices of rows x cols.
type BiasBackend interface {
	// BiasAdd adds bias[j] to y[r, j] in float32.
	BiasAdd(y, bias []float32, rows, cols int)
	// BiasGrad adds float32(sum over r, in row order, of float64(dy[r, j]))
	// to db[j].
	BiasGrad(dy, db []float32, rows, cols int)
}

// ZeroGradsOn clears the gradients of ps as ZeroGrads does, on b when it
// is a Zeroer (a device backend clears its managed gradients where its
// kernels accumulate them, instead of migrating them to the host), else on
// the host. b may be nil.
func ZeroGradsOn(b Backend, ps []*Param) {
	z, ok := b.(Zeroer)
	for _, p := range ps {
		if p.Grad == nil {
			continue
		}
		if ok {
			z.Zero(p.Grad.Data())
		} else {
			clear(p.Grad.Data())
		}
	}
}

// convBNBackward is ConvBNBackend.ConvBNBackward on g's backend, or the
// host loops when it has none.
func (g *Graph) convBNBackward(dy, y, scale, dc, dres []float32, n, k, hw int, relu bool) {
	if cb, ok := g.backend.(ConvBNBackend); ok {
		cb.ConvBNBackward(dy, y, scale, dc, dres, n, k, hw, relu)
		return
	}
	parallelFor(n*k, func(p0, p1 int) {
		for p := p0; p < p1; p++ {
			src, op := dy[p*hw:(p+1)*hw], y[p*hw:(p+1)*hw]
			if dres != nil {
				dr := dres[p*hw : (p+1)*hw]
				for i, d := range src {
					if !relu || op[i] > 0 {
						dr[i] += d
					}
				}
			}
			if dc != nil {
				sk, dst := scale[p%k], dc[p*hw:(p+1)*hw]
				for i, d := range src {
					if relu && !(op[i] > 0) {
						d = 0
					}
					dst[i] = d * sk
				}
			}
		}
	})
}

// biasAdd is BiasBackend.BiasAdd on g's backend, or the host loop.
func (g *Graph) biasAdd(y, bias []float32, rows, cols int) {
	if bb, ok := g.backend.(BiasBackend); ok {
		bb.BiasAdd(y, bias, rows, cols)
		return
	}
	for r := 0; r < rows; r++ {
		row := y[r*cols : (r+1)*cols]
		for j := range row {
			row[j] += bias[j]
		}
	}
}

// biasGrad is BiasBackend.BiasGrad on g's backend, or the host loop.
func (g *Graph) biasGrad(dy, db []float32, rows, cols int) {
	if bb, ok := g.backend.(BiasBackend); ok {
		bb.BiasGrad(dy, db, rows, cols)
		return
	}
	for j := range db[:cols] {
		var s float64
		for r := 0; r < rows; r++ {
			s += float64(dy[r*cols+j])
		}
		db[j] += float32(s)
	}
}

// BatchNormStatsPerChannel is how many float32s per channel the statistics
// buffer of BatchNormTrainBackend holds.
const BatchNormStatsPerChannel = 4

// BatchNormTrainBackend runs BatchNorm2d's train-mode forward and backward
// on the backend with no host round trip: the batch statistics, the
// running statistics' update, the normalisation and the backward's sums
// all stay in backend memory, so a device backend need not wait for its
// queue at every BatchNorm (BatchNormBackend's backward takes host
// statistics; ChannelStats returns them to the host). BatchNorm2d uses it
// in train mode when the graph's backend has it.
//
// stats (len >= BatchNormStatsPerChannel*c, backend memory the graph owns
// until Release) carries the forward's statistics to the backward:
// stats[0:c] the float64 batch mean rounded to float32, stats[c:2c] the
// remainder mean - float64(stats[0:c]) rounded to float32, and
// stats[2c:3c], stats[3c:4c] the same for invstd = 1/sqrt(var+eps), var
// the biased batch variance. Host code reads it only after a Sync.
type BatchNormTrainBackend interface {
	// BatchNormTrainForward normalises x (n, c, hw) with its batch
	// statistics into y = x*scale + shift (then max(y, 0) with relu, NaN
	// passing), scale = gamma*invstd and shift = beta - mean*scale rounded
	// to float32; it writes stats and updates runningMean and runningVar
	// as torch: r = (1-momentum)*r + momentum*s in float64 rounded to
	// float32, with the unbiased variance var*m/(m-1) (m = n*hw >= 2) for
	// runningVar. Mean and variance are float64 sums (two passes).
	BatchNormTrainForward(x, y []float32, n, c, hw int, gamma, beta, runningMean, runningVar, stats []float32, momentum, eps float64, relu bool)
	// BatchNormTrainBackward adds the train-mode gradients given the
	// forward's x, its output y (read only with relu: the output gradient
	// is +0 where y is not positive), dy and stats: dbeta[c] += sum(g),
	// dgamma[c] += sum(g*xhat) and dx += gamma*invstd*(g - mean(g) -
	// xhat*mean(g*xhat)), g the (masked) dy, sums in float64. Any of dx,
	// dgamma and dbeta may be nil.
	BatchNormTrainBackward(x, y, dy, dx, dgamma, dbeta []float32, n, c, hw int, stats, gamma []float32, relu bool)
}
