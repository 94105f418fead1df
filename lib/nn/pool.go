package nn

import (
	"fmt"

	"github.com/detlab/detlab/lib/tensor"
)

// PoolGeom describes a max pooling over (N*C) planes of HxW into OHxOW.
type PoolGeom struct {
	Planes, H, W   int
	KH, KW         int
	SH, SW, PH, PW int
	OH, OW         int
}

// MaxPool2d is torch.nn.MaxPool2d(kernel, stride, padding) with padding
// acting as -inf (ResNet's stem uses 3, 2, 1). The gradient goes to the
// first maximum of each window in row-major order; a NaN in a window wins
// the window and propagates.
type MaxPool2d struct {
	Kernel, Stride, Padding int
}

// OutputShape returns the pooled NCHW shape (floor mode).
func (p MaxPool2d) OutputShape(in []int) ([]int, error) {
	geo, err := p.geom(in)
	if err != nil {
		return nil, err
	}
	return []int{in[0], in[1], geo.OH, geo.OW}, nil
}

func (p MaxPool2d) geom(in []int) (PoolGeom, error) {
	if len(in) != 4 {
		return PoolGeom{}, fmt.Errorf("nn: MaxPool2d: input must be NCHW, got shape %v", in)
	}
	if p.Kernel <= 0 || p.Stride <= 0 || p.Padding < 0 || 2*p.Padding > p.Kernel {
		return PoolGeom{}, fmt.Errorf("nn: MaxPool2d: bad configuration kernel=%d stride=%d padding=%d", p.Kernel, p.Stride, p.Padding)
	}
	if tensor.Numel(in) == 0 {
		return PoolGeom{}, fmt.Errorf("nn: MaxPool2d: empty input shape %v", in)
	}
	g := PoolGeom{Planes: in[0] * in[1], H: in[2], W: in[3], KH: p.Kernel, KW: p.Kernel,
		SH: p.Stride, SW: p.Stride, PH: p.Padding, PW: p.Padding}
	if g.H+2*g.PH < g.KH || g.W+2*g.PW < g.KW {
		return PoolGeom{}, fmt.Errorf("nn: MaxPool2d: input %dx%d smaller than kernel %d", g.H, g.W, p.Kernel)
	}
	g.OH = (g.H+2*g.PH-g.KH)/g.SH + 1
	g.OW = (g.W+2*g.PW-g.KW)/g.SW + 1
	return g, nil
}

// Forward pools x.
func (p MaxPool2d) Forward(g *Graph, x *Var) (*Var, error) {
	geo, err := p.geom(x.Shape())
	if err != nil {
		return nil, err
	}
	s := x.Shape()
	out := g.newTensorNoZero(s[0], s[1], geo.OH, geo.OW)
	var arg []int32 // argmax positions, only kept when a backward may need them
	if g.grad && x.RequiresGrad() {
		arg = g.newInt32s(out.Len()) // the arena's, back on Release
	}
	g.backend.MaxPool2d(geo, x.Value.Data(), out.Data(), arg)
	inputs := g.varList(x)
	if !g.records(inputs) {
		return g.constant(out), nil
	}
	op := g.opLists().maxPool.take()
	*op = maxPoolOp{g: g, geo: geo, arg: arg}
	return g.push(out, inputs, nil, op), nil
}

// maxPoolOp is MaxPool2d's backward.
type maxPoolOp struct {
	g   *Graph
	geo PoolGeom
	arg []int32
}

func (o *maxPoolOp) backward(gy *tensor.Tensor, gin []*tensor.Tensor) {
	o.g.backend.MaxPool2dBackward(o.geo, gy.Data(), gin[0].Data(), o.arg)
}

// OutputShape returns (N,C,1,1).
func (a AdaptiveAvgPool2d1) OutputShape(in []int) ([]int, error) {
	if err := a.checkInput(in); err != nil {
		return nil, err
	}
	return []int{in[0], in[1], 1, 1}, nil
}

func (AdaptiveAvgPool2d1) checkInput(in []int) error {
	if len(in) != 4 {
		return fmt.Errorf("nn: AdaptiveAvgPool2d: input must be NCHW, got shape %v", in)
	}
	if tensor.Numel(in) == 0 {
		return fmt.Errorf("nn: AdaptiveAvgPool2d: empty input shape %v", in)
	}
	return nil
}

// Forward averages each plane (float64 accumulation).
func (a AdaptiveAvgPool2d1) Forward(g *Graph, x *Var) (*Var, error) {
	in := x.Shape()
	if err := a.checkInput(in); err != nil {
		return nil, err
	}
	hw := in[2] * in[3]
	out := g.newTensorNoZero(in[0], in[1], 1, 1) // OutputShape, on the stack
	g.hostSync()
	xd, od := x.Value.Data(), out.Data()
	for p := range od {
		var s float64
		for _, v := range xd[p*hw : (p+1)*hw] {
			s += float64(v)
		}
		od[p] = float32(s / float64(hw))
	}
	inputs := g.varList(x)
	if !g.records(inputs) {
		return g.constant(out), nil
	}
	op := g.opLists().avgPool.take()
	*op = avgPoolOp{hw: hw}
	return g.push(out, inputs, nil, op), nil
}

// avgPoolOp is AdaptiveAvgPool2d1's backward.
type avgPoolOp struct{ hw int }

func (o *avgPoolOp) backward(gy *tensor.Tensor, gin []*tensor.Tensor) {
	dx, hw := gin[0].Data(), o.hw
	inv := 1 / float32(hw)
	for p, d := range gy.Data() {
		v := d * inv
		for i := range dx[p*hw : (p+1)*hw] {
			dx[p*hw+i] += v
		}
	}
}

// Flatten is torch.flatten(x, 1): (N, ...) to (N, rest).
type Flatten struct{}

// OutputShape returns (N, product of the other dimensions).
func (Flatten) OutputShape(in []int) ([]int, error) {
	if len(in) < 1 {
		return nil, fmt.Errorf("nn: Flatten: scalar input")
	}
	return []int{in[0], tensor.Numel(in[1:])}, nil
}

// Forward flattens x.
func (f Flatten) Forward(g *Graph, x *Var) (*Var, error) {
	in := x.Shape()
	if len(in) < 1 {
		return nil, fmt.Errorf("nn: Flatten: scalar input")
	}
	return Reshape(g, x, in[0], numel(in[1:])) // f.OutputShape, on the stack
}
