package nn

import "github.com/detlab/detlab/lib/tensor"

// Asynchronous backends. A device backend (lib/cuda) may queue its
// operations and return before the device has run them: the results, and
// the operands the queued work still reads, are then not the host's to
// touch until the backend has synchronized. Such a backend implements
// Syncer; host code calls Sync before it reads or
// writes tensor data a backend operation may still be using: lib/nn's
// host operations and host fallback paths, and the model stages that run
// on the host (proposal decoding, target assignment, losses, the
// trainer's host steps). Writes count as much as reads: overwriting an
// input, or reusing a buffer, while a queued kernel still reads it
// corrupts that kernel's result.

// Syncer is a backend whose operations may still be running when they
// return. Sync waits until every queued operation has finished, so that
// host code may touch their operands and results; it returns at once,
// nearly for free, when nothing is pending. A failure of the queued work
// is reported by Sync.
type Syncer interface {
	Sync() error
}

// Sync waits for b's queued work when b is a Syncer (otherwise, and for a
// nil b, it does nothing) and returns the failure of that work, if any.
func Sync(b Backend) error {
	if s, ok := b.(Syncer); ok {
		return s.Sync()
	}
	return nil
}

// hostSync waits for the queued work of g's backend before host code
// touches g's tensors (see Sync). A failure of that work is a device
// failure, not bad input: hostSync panics with it, as the device
// backend's own operations do.
func (g *Graph) hostSync() {
	if g == nil {
		return
	}
	if err := Sync(g.backend); err != nil {
		panic(err)
	}
}

// newZeroed is NewTensor without the wait: for buffers the next
// operations fill on the backend (gradients), or that host code touches
// only after a hostSync.
func (g *Graph) newZeroed(shape ...int) *tensor.Tensor {
	t := g.newTensorNoZero(shape...)
	g.zero(t.Data())
	return t
}

// onDevice reports whether op's backward touches tensor data only through
// operations of b (no host loop), so that Backward need not wait for the
// work queued before it: the convolution, the fused ConvBN, BatchNorm
// (without its ReLU mask, or with it in train mode on a
// BatchNormTrainBackend), Linear, ReLU, the residual sum and max pooling
// when b offers the optional interfaces their backward uses.
func onDevice(op backwardOp, b Backend) bool {
	if _, ok := b.(Syncer); !ok {
		return false // nothing is queued: the question does not arise
	}
	_, rounds := b.(RoundingBackend)
	switch o := op.(type) {
	case *convOp:
		return o.ac == Float32 || rounds
	case *convBNOp:
		_, ok := b.(ConvBNBackend)
		return ok && (o.ac == Float32 || rounds)
	case *bnOp:
		if o.device != nil {
			return true // BatchNormTrainBackend: the ReLU mask too
		}
		_, ok := b.(BatchNormBackend)
		return ok && !o.relu
	case *linearOp:
		_, ok := b.(BiasBackend)
		return ok && (o.ac == Float32 || rounds)
	case *reluOp:
		return o.eb != nil
	case *addOp:
		return o.eb != nil
	case *maxPoolOp:
		return true
	}
	return false
}
