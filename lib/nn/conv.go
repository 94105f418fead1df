package nn

import (
	"fmt"
	"math/rand"

	"github.com/detlab/detlab/lib/tensor"
)

// ConvGeom describes one 2-D convolution (groups 1, dilation 1): input
// (N,C,H,W), weight (K,C,KH,KW), output (N,K,OH,OW).
type ConvGeom struct {
	N, C, H, W     int
	K, KH, KW      int
	SH, SW, PH, PW int
	OH, OW         int
	// Precision is the format the products run in (autocast); Float32
	// unless the layer is inside an autocast region.
	Precision Precision
	// Weights, when non-nil, is the cache of the parameter whose current
	// values the weight operand w is (not a rounded or folded copy): a
	// backend may keep values derived from w in it (WeightCache.Get) and
	// reuse them while the parameter is unchanged. A derived value that
	// also folds in other inputs (the epilogue's Scale, the bias) must
	// pass them as Get's extra. nil: w is a temporary; derive nothing
	// lasting from it.
	Weights *WeightCache
	// forwardOnly is set on graphs that record no gradients (inference):
	// the CPU backend may then run algorithms its backward is not paired
	// with (Winograd).
	forwardOnly bool
}

// pointwise reports a 1x1, stride 1, unpadded convolution, whose im2col
// matrix is the input itself.
func (c ConvGeom) pointwise() bool {
	return c.KH == 1 && c.KW == 1 && c.SH == 1 && c.SW == 1 && c.PH == 0 && c.PW == 0
}

// Conv2d is torch.nn.Conv2d with groups=1 and dilation=1: weight (out, in,
// k, k) and an optional bias (out).
type Conv2d struct {
	InC, OutC       int
	Kernel          int
	Stride, Padding int
	Weight          *Param
	Bias            *Param // nil without bias
}

// NewConv2d returns a convolution whose parameters are named name+".weight"
// and name+".bias", initialised as torch does by default:
// kaiming_uniform_(a=sqrt(5)) for the weight, U(-1/sqrt(fan_in),
// 1/sqrt(fan_in)) for the bias.
func NewConv2d(name string, in, out, kernel, stride, padding int, bias bool, rng *rand.Rand) (*Conv2d, error) {
	if in <= 0 || out <= 0 || kernel <= 0 || stride <= 0 || padding < 0 {
		return nil, fmt.Errorf("nn: Conv2d %s: bad configuration in=%d out=%d kernel=%d stride=%d padding=%d", name, in, out, kernel, stride, padding)
	}
	c := &Conv2d{InC: in, OutC: out, Kernel: kernel, Stride: stride, Padding: padding,
		Weight: NewParam(joinName(name, "weight"), out, in, kernel, kernel)}
	fanIn := in * kernel * kernel
	KaimingUniform(c.Weight.Value, fanIn, sqrt5, rng)
	if bias {
		c.Bias = NewParam(joinName(name, "bias"), out)
		b := 1 / sqrtf(float64(fanIn))
		Uniform(c.Bias.Value, -b, b, rng)
	}
	return c, nil
}

// OutputShape returns the output shape for an NCHW input shape.
func (c *Conv2d) OutputShape(in []int) ([]int, error) {
	geo, err := c.geom(in)
	if err != nil {
		return nil, err
	}
	return []int{geo.N, geo.K, geo.OH, geo.OW}, nil
}

func (c *Conv2d) geom(in []int) (ConvGeom, error) {
	if len(in) != 4 {
		return ConvGeom{}, fmt.Errorf("nn: Conv2d %s: input must be NCHW, got shape %v", c.Weight.Name, in)
	}
	if in[1] != c.InC {
		return ConvGeom{}, fmt.Errorf("nn: Conv2d %s: input has %d channels, want %d (shape %v)", c.Weight.Name, in[1], c.InC, in)
	}
	g := ConvGeom{N: in[0], C: in[1], H: in[2], W: in[3], K: c.OutC, KH: c.Kernel, KW: c.Kernel,
		SH: c.Stride, SW: c.Stride, PH: c.Padding, PW: c.Padding}
	if g.N == 0 || g.H == 0 || g.W == 0 {
		return ConvGeom{}, fmt.Errorf("nn: Conv2d %s: empty input shape %v", c.Weight.Name, in)
	}
	if g.H+2*g.PH < g.KH || g.W+2*g.PW < g.KW {
		return ConvGeom{}, fmt.Errorf("nn: Conv2d %s: input %dx%d smaller than kernel %d with padding %d", c.Weight.Name, g.H, g.W, c.Kernel, c.Padding)
	}
	g.OH = (g.H+2*g.PH-g.KH)/g.SH + 1
	g.OW = (g.W+2*g.PW-g.KW)/g.SW + 1
	return g, nil
}

// Forward applies the convolution.
func (c *Conv2d) Forward(g *Graph, x *Var) (*Var, error) {
	base, err := c.geom(x.Shape())
	if err != nil {
		return nil, err
	}
	w := g.Param(c.Weight)
	var b *Var
	var bias []float32
	if c.Bias != nil {
		b = g.Param(c.Bias)
		bias = c.Bias.Value.Data()
	}
	ac := g.autocast
	geo, xd, wd := g.convOperands(base, x, c.Weight)
	out := g.newTensorNoZero(geo.N, geo.K, geo.OH, geo.OW)
	g.backend.Conv2d(geo, xd, wd, bias, out.Data(), g.scratch())
	inputs := g.varList(x, w, b)
	if !g.records(inputs) {
		return g.constant(out), nil
	}
	op := g.opLists().conv.take()
	*op = convOp{g: g, geo: geo, xd: xd, wd: wd, ac: ac}
	return g.push(out, inputs, nil, op), nil
}

// convOp is Conv2d's backward: inputs x, weight, bias.
type convOp struct {
	g      *Graph
	geo    ConvGeom
	xd, wd []float32
	ac     Precision
}

func (o *convOp) backward(gy *tensor.Tensor, gin []*tensor.Tensor) {
	g := o.g
	dy := gy.Data()
	if o.ac != Float32 {
		// Rounded here on both paths: the bias gradient sums the
		// reduced-precision dy, as torch's does.
		s := g.scratch()
		r := s.Get(len(dy))
		defer s.Put(r)
		g.roundAs(o.ac, r, dy)
		dy = r
	}
	g.backend.Conv2dBackward(o.geo, o.xd, o.wd, dy, gradData(gin[0]), gradData(gin[1]), gradData(gin[2]), g.scratch())
}

// Params returns the weight and, if present, the bias.
func (c *Conv2d) Params() []*Param {
	if c.Bias == nil {
		return []*Param{c.Weight}
	}
	return []*Param{c.Weight, c.Bias}
}

// AddState adds weight (and bias) under prefix.
func (c *Conv2d) AddState(sd *StateDict, prefix string) {
	sd.AddParam(prefix+"weight", c.Weight)
	if c.Bias != nil {
		sd.AddParam(prefix+"bias", c.Bias)
	}
}

// convOperands returns the geometry (geo with the graph's settings) and
// the input and weight data a convolution on g multiplies: as they are in
// float32; under autocast either as they are with the geometry's
// Precision set (a backend that rounds while it packs) or as rounded
// copies owned by g. The geometry is returned, not set through a pointer,
// so that the backward op copies it by value instead of moving it to the
// heap.
func (g *Graph) convOperands(geo ConvGeom, x *Var, w *Param) (_ ConvGeom, xd, wd []float32) {
	xd, wd = x.Value.Data(), w.Value.Data()
	geo.forwardOnly = !g.grad
	switch ac := g.autocast; {
	case ac == Float32:
		geo.Weights = w.Cache()
	case nativeBackend(g.backend, ac) != nil:
		geo.Precision = ac // the backend rounds while it packs
		geo.Weights = w.Cache()
	default:
		xd = g.roundedCopy(xd, x.Shape()...)
		wd = g.roundedCopy(wd, w.Value.Shape()...)
	}
	return geo, xd, wd
}
