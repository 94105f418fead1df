package nn

import (
	"fmt"
	"math"

	"github.com/detlab/detlab/lib/tensor"
)

// ConvEpilogue is the per-output-channel work a fused convolution applies
// to its product before writing it:
//
//	y[n,k,i] = relu(Scale[k]*conv(x, w)[n,k,i] + Shift[k] + Residual[n,k,i])
//
// each part only when given. It is the shape of Conv2d followed by an eval
// or frozen BatchNorm (a fixed per-channel affine map), the residual sum of
// a ResNet block and a ReLU.
type ConvEpilogue struct {
	// Scale and Shift have one value per output channel; nil means 1 and
	// 0.
	Scale, Shift []float32
	// Residual, shaped like y (N,K,OH,OW), is added after Shift; nil:
	// none.
	Residual []float32
	// ReLU clamps the result below at 0 (NaN stays NaN).
	ReLU bool
}

// FusedConvBackend is an optional Backend extension: a backend that
// implements it runs a convolution and its epilogue in one pass over the
// output. ConvBN asks for it by type assertion and otherwise runs
// Backend.Conv2d and the epilogue as separate passes.
type FusedConvBackend interface {
	// Conv2dFused writes y (N,K,OH,OW) = ep applied to conv(x, w). y is
	// overwritten and does not alias x or ep.Residual. Like Conv2d it
	// must honour geo.Precision when the backend reports
	// NativePrecision for it (ConvBN then passes unrounded operands),
	// applying ep in float32 to the float32 accumulated product.
	Conv2dFused(geo ConvGeom, x, w []float32, ep ConvEpilogue, y []float32, s Scratch)
}

// Fusable reports whether ConvBN can fold bn into the convolution on g: the
// BatchNorm must be a fixed affine map whose parameters need no gradient
// here (frozen, or eval mode on an inference graph or with untrainable
// parameters). Autocast regions fuse too: the convolution's operands are
// rounded as Conv2d.Forward rounds them and the BatchNorm stays float32
// arithmetic on the float32 product (see ConvBN).
func (bn *BatchNorm2d) Fusable(g *Graph) bool {
	switch bn.Mode {
	case BNFrozen:
		return true
	case BNEval:
		return !g.grad || !(bn.Weight.Trainable || bn.Bias.Trainable)
	}
	return false
}

// affine returns the per-channel scale and shift of bn from its running
// statistics (as forward computes them for eval and frozen modes), with a
// convolution bias (nil: none) folded into the shift.
func (bn *BatchNorm2d) affine(convBias []float32) (scale, shift []float32) {
	gamma, beta := bn.Weight.Value.Data(), bn.Bias.Value.Data()
	rm, rv := bn.RunningMean.Data(), bn.RunningVar.Data()
	scale = make([]float32, bn.C)
	shift = make([]float32, bn.C)
	for i := range bn.C {
		s := float64(gamma[i]) / math.Sqrt(float64(rv[i])+bn.Eps)
		scale[i] = float32(s)
		mean := float64(rm[i])
		if convBias != nil {
			mean -= float64(convBias[i])
		}
		shift[i] = float32(float64(beta[i]) - mean*s)
	}
	return scale, shift
}

// ConvBN returns relu(bn(conv(x)) + residual): the convolution, the
// BatchNorm, then the residual sum when residual is non-nil, then a ReLU
// when relu is set (ResNet's conv-bn-relu and, with the block's identity as
// residual, its conv-bn-add-relu).
//
// When bn.Fusable(g), this is one operation: the BatchNorm's scale is
// folded into the convolution weights and its shift, the residual and the
// ReLU are applied as the output is written (in the GEMM's store on the
// CPU backend), which saves two to four passes over the output and the
// memory of the intermediate maps; gradients for x, the convolution's
// parameters and the residual flow through it as through the separate
// layers. Otherwise it runs Conv2d.Forward, BatchNorm2d.Forward (or
// ForwardReLU) and Add (or AddReLU) in turn. Both give the same results up
// to float32 rounding (a few ulps).
//
// In an autocast region (g.Autocast() not Float32) the convolution's input
// and weights are rounded to the region's precision as Conv2d.Forward
// rounds them (by the backend while it packs where it computes natively,
// else as rounded copies), and so is the convolution's output gradient in
// backward; the BatchNorm, residual and ReLU stay float32, as in torch's
// autocast. On the CPU with native bfloat16 the BatchNorm's scale is then
// applied in float32 to the float32 accumulated product (not folded into
// the rounded weights); on the emulated path it is folded into the
// already rounded weights in float32. Either way the fused result differs
// from the separate layers only by float32 rounding order.
func ConvBN(g *Graph, conv *Conv2d, bn *BatchNorm2d, x, residual *Var, relu bool) (*Var, error) {
	if conv == nil || bn == nil {
		return nil, fmt.Errorf("nn: ConvBN: nil convolution or BatchNorm")
	}
	base, err := conv.geom(x.Shape())
	if err != nil {
		return nil, err
	}
	outShape := [4]int{base.N, base.K, base.OH, base.OW}
	if err := bn.checkInput(outShape[:]); err != nil {
		return nil, err
	}
	if residual != nil && !tensor.SameShape(residual.Shape(), outShape[:]) {
		return nil, fmt.Errorf("nn: ConvBN: residual shape %v differs from the output shape %v", residual.Shape(), outShape)
	}
	if !bn.Fusable(g) {
		return convBNUnfused(g, conv, bn, x, residual, relu)
	}
	var bias []float32
	if conv.Bias != nil {
		bias = conv.Bias.Value.Data()
	}
	scale, shift := bn.affine(bias)
	ep := ConvEpilogue{Scale: scale, Shift: shift, ReLU: relu}
	if residual != nil {
		ep.Residual = residual.Value.Data()
	}
	ac := g.autocast
	geo, xd, wd := g.convOperands(base, x, conv.Weight)
	out := g.newTensorNoZero(outShape[:]...)
	if fb, ok := g.backend.(FusedConvBackend); ok {
		fb.Conv2dFused(geo, xd, wd, ep, out.Data(), g.scratch())
	} else {
		g.backend.Conv2d(geo, xd, wd, nil, out.Data(), g.scratch())
		applyConvEpilogue(g.backend, geo, out.Data(), ep)
	}
	w := g.Param(conv.Weight)
	var b *Var
	if conv.Bias != nil {
		b = g.Param(conv.Bias)
	}
	inputs := g.varList(x, w, b, residual)
	if !g.records(inputs) {
		return g.constant(out), nil
	}
	op := g.opLists().convBN.take()
	*op = convBNOp{g: g, geo: geo, xd: xd, wd: wd, out: out.Data(), scale: scale, ac: ac, relu: relu}
	return g.push(out, inputs, nil, op), nil
}

// convBNOp is ConvBN's backward: inputs x, weight, bias, residual.
type convBNOp struct {
	g           *Graph
	geo         ConvGeom
	xd, wd, out []float32
	scale       []float32
	ac          Precision
	relu        bool
}

func (o *convBNOp) backward(gy *tensor.Tensor, gin []*tensor.Tensor) {
	g, geo := o.g, o.geo
	dy := gy.Data()
	var dc []float32
	dr := gradData(gin[3])
	s := g.scratch()
	convGrad := gin[0] != nil || gin[1] != nil || gin[2] != nil
	if convGrad {
		// d conv = dy (masked by the ReLU) * scale[k]: the
		// BatchNorm's input gradient with fixed statistics.
		dc = s.Get(len(dy))
		defer s.Put(dc)
	}
	g.convBNBackward(dy, o.out, o.scale, dc, dr, geo.N, geo.K, geo.OH*geo.OW, o.relu)
	if !convGrad {
		return
	}
	if o.ac != Float32 {
		// The convolution's output gradient in the region's
		// precision, as Conv2d.Forward's backward rounds it.
		g.roundAs(o.ac, dc, dc)
	}
	g.backend.Conv2dBackward(geo, o.xd, o.wd, dc, gradData(gin[0]), gradData(gin[1]), gradData(gin[2]), s)
}

// convBNUnfused is ConvBN as separate layers.
func convBNUnfused(g *Graph, conv *Conv2d, bn *BatchNorm2d, x, residual *Var, relu bool) (*Var, error) {
	h, err := conv.Forward(g, x)
	if err != nil {
		return nil, err
	}
	if residual == nil {
		if relu {
			return bn.ForwardReLU(g, h)
		}
		return bn.Forward(g, h)
	}
	if h, err = bn.Forward(g, h); err != nil {
		return nil, err
	}
	if relu {
		return AddReLU(g, h, residual)
	}
	return Add(g, h, residual)
}

// applyConvEpilogue applies ep to a convolution's output y in place, with
// the backend's ChannelAffine where it can, for backends without
// Conv2dFused.
func applyConvEpilogue(b Backend, geo ConvGeom, y []float32, ep ConvEpilogue) {
	ohw := geo.OH * geo.OW
	scale, shift := ep.Scale, ep.Shift
	if scale == nil {
		scale = make([]float32, geo.K)
		for i := range scale {
			scale[i] = 1
		}
	}
	if shift == nil {
		shift = make([]float32, geo.K)
	}
	if ep.Residual == nil {
		b.ChannelAffine(y, y, geo.N, geo.K, ohw, scale, shift, ep.ReLU)
		return
	}
	b.ChannelAffine(y, y, geo.N, geo.K, ohw, scale, shift, false)
	res := ep.Residual
	parallelFor(len(y)/4096+1, func(c0, c1 int) {
		lo, hi := c0*4096, min(c1*4096, len(y))
		for i := lo; i < hi; i++ {
			v := y[i] + res[i]
			if ep.ReLU && !(v > 0) && v == v {
				v = 0
			}
			y[i] = v
		}
	})
}
