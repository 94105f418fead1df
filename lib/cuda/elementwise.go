package cuda

import (
	"fmt"

	"github.com/detlab/detlab/lib/nn"
)

// The operations below run the contract's elementwise, optimizer and
// scaler kernels. nn.Backend does not include them: layers and lib/train
// can use them through optional interfaces (a type assertion on the
// backend), so that tensors in managed memory need not travel to the host
// for a ReLU, a residual sum or an SGD step. Each panics with an *OpError
// on a device failure or on slices shorter than their length argument.

// sameLen checks that every slice has at least n elements.
func sameLen(op string, n int, names string, xs ...[]float32) {
	for i, x := range xs {
		if len(x) < n {
			panic(&OpError{Op: op, Err: fmt.Errorf("operand %d of %s has %d elements, want %d", i, names, len(x), n)})
		}
	}
}

// Add writes y = a + c, then max(y, 0) when relu (NaN stays NaN), over
// len(y) elements; y may alias a or c (nn.ElementwiseBackend's Add).
func (b *Backend) Add(a, c, y []float32, relu bool) {
	n := len(y)
	sameLen("Add", n, "(a, c)", a, c)
	if n == 0 {
		return
	}
	b.run("Add", func(s *scope) {
		pa, pc, py := s.f32(a[:n], read), s.f32(c[:n], read), s.f32(y, write)
		s.launch("detlab_add", gridFor(n), pArg(pa), pArg(pc), pArg(py), iArg(n), bArg(relu))
	})
}

// ReLU writes y = max(x, 0) over len(y) elements (NaN stays NaN); y may
// alias x.
func (b *Backend) ReLU(x, y []float32) {
	n := len(y)
	sameLen("ReLU", n, "(x, y)", x)
	if n == 0 {
		return
	}
	b.run("ReLU", func(s *scope) {
		px, py := s.f32(x[:n], read), s.f32(y, write)
		s.launch("detlab_relu", gridFor(n), pArg(px), pArg(py), iArg(n))
	})
}

// ReLUBackward adds dy into dx where the ReLU output y is positive, over
// len(dx) elements.
func (b *Backend) ReLUBackward(y, dy, dx []float32) {
	n := len(dx)
	sameLen("ReLUBackward", n, "(y, dy, dx)", y, dy)
	if n == 0 {
		return
	}
	b.run("ReLUBackward", func(s *scope) {
		py, pdy, pdx := s.f32(y[:n], read), s.f32(dy[:n], read), s.f32(dx, readWrite)
		s.launch("detlab_relu_backward", gridFor(n), pArg(py), pArg(pdy), pArg(pdx), iArg(n))
	})
}

// Round writes src rounded to precision p (ties to even, as nn.RoundBF16
// and nn.RoundFP16) into dst (len(dst) >= len(src); dst may alias src):
// nn.Precision.RoundSlice on the device. Float32 copies.
func (b *Backend) Round(p nn.Precision, dst, src []float32) {
	n := len(src)
	sameLen("Round", n, "(dst)", dst)
	if n == 0 {
		return
	}
	var kernel string
	switch p {
	case nn.BFloat16:
		kernel = "detlab_round_bf16"
	case nn.Float16:
		kernel = "detlab_round_fp16"
	case nn.Float32:
		copy(dst, src)
		return
	default:
		panic(&OpError{Op: "Round", Err: fmt.Errorf("unknown precision %v", p)})
	}
	b.run("Round", func(s *scope) {
		px, py := s.f32(src, read), s.f32(dst[:n], write)
		s.launch(kernel, gridFor(n), pArg(px), pArg(py), iArg(n))
	})
}

// SGDStep is one torch.optim.SGD update of the parameters p by the
// gradient g, element by element as lib/train's SGD: d = g + wd*p; with
// momentum, buf = d on the first step else momentum*buf + (1-dampening)*d,
// and d = d + momentum*buf (Nesterov) or buf; then p -= lr*d. buf (the
// momentum buffer, len(p) elements) may be nil when momentum is 0.
func (b *Backend) SGDStep(p, g, buf []float32, lr, momentum, dampening, weightDecay float32, nesterov, first bool) {
	n := len(p)
	sameLen("SGDStep", n, "(g)", g)
	if momentum != 0 {
		sameLen("SGDStep", n, "(buf)", buf)
	} else {
		buf = nil
	}
	if n == 0 {
		return
	}
	b.run("SGDStep", func(s *scope) {
		pp, pg := s.f32(p, readWrite), s.f32(g[:n], read)
		var pb uint64
		if buf != nil {
			pb = s.f32(buf[:n], readWrite)
		}
		s.launch("detlab_sgd_step", gridFor(n), pArg(pp), pArg(pg), pArg(pb), iArg(n),
			fArg(lr), fArg(momentum), fArg(dampening), fArg(weightDecay), bArg(nesterov), bArg(first))
	})
}

// NonFinite reports whether any element of x is Inf or NaN (a gradient
// scaler's check).
func (b *Backend) NonFinite(x []float32) bool {
	if len(x) == 0 {
		return false
	}
	flag := []int32{0}
	b.run("NonFinite", func(s *scope) {
		s.hostRead = true // the flag is read below
		px, pf := s.f32(x, read), s.i32(flag, readWrite)
		s.launch("detlab_nonfinite", gridFor(len(x)), pArg(px), iArg(len(x)), pArg(pf))
	})
	return flag[0] != 0
}

// Scale multiplies x by s in place.
func (b *Backend) Scale(x []float32, s float32) {
	if len(x) == 0 {
		return
	}
	b.run("Scale", func(sc *scope) {
		px := sc.f32(x, readWrite)
		sc.launch("detlab_scale", gridFor(len(x)), pArg(px), iArg(len(x)), fArg(s))
	})
}

// The optional nn interfaces the operations above implement.
var (
	_ nn.ElementwiseBackend = (*Backend)(nil)
	_ nn.RoundingBackend    = (*Backend)(nil)
)

// The optional lib/nn extensions the backend implements, so that graphs,
// BatchNorm and lib/train's SGD keep their passes on the device.
var (
	_ nn.ElementwiseBackend = (*Backend)(nil)
	_ nn.RoundingBackend    = (*Backend)(nil)
	_ nn.OptimizerBackend   = (*Backend)(nil)
	_ nn.ScalerBackend      = (*Backend)(nil)
	_ nn.Allocator          = (*Backend)(nil)
)
