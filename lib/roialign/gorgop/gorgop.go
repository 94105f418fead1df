// Package gorgop makes RoIAlign a gorgonia operation with an exact
// gradient, so it can sit inside a gorgonia ExprGraph:
//
//	pooled, err := gorgop.RoIAlign(features, rois, roialign.Defaults(1.0/32))
//
// features is a float32 (N, C, H, W) node, rois a float32 (K, 5) node of
// rows [batch_index, x1, y1, x2, y2]; the result is (K, C, OutH, OutW).
// Gradients flow to the features through a backward op that runs
// roialign's backward kernel; rois get no gradient (torchvision's
// roi_align does not differentiate with respect to boxes either).
package gorgop

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	"github.com/detlab/detlab/lib/roialign"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Op is the RoIAlign forward op: inputs features (N, C, H, W) and rois
// (K, 5), both float32; output (K, C, OutH, OutW).
type Op struct {
	cfg roialign.Config
}

// New returns the op for a configuration, checked.
func New(cfg roialign.Config) (*Op, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gorgop: %w", err)
	}
	return &Op{cfg: cfg}, nil
}

// RoIAlign applies the op to features and rois nodes of the same graph.
func RoIAlign(features, rois *G.Node, cfg roialign.Config) (*G.Node, error) {
	op, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if features == nil || rois == nil {
		return nil, fmt.Errorf("gorgop: %w: nil node", roialign.ErrInput)
	}
	if s := features.Shape(); len(s) != 4 {
		return nil, fmt.Errorf("gorgop: %w: features node has shape %v, want (N, C, H, W)", roialign.ErrInput, s)
	}
	if s := rois.Shape(); len(s) != 2 || s[1] != 5 {
		return nil, fmt.Errorf("gorgop: %w: rois node has shape %v, want (K, 5)", roialign.ErrInput, s)
	}
	if features.Dtype() != tensor.Float32 || rois.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("gorgop: %w: features and rois must be float32, got %v and %v", roialign.ErrInput, features.Dtype(), rois.Dtype())
	}
	out, err := G.ApplyOp(op, features, rois)
	if err != nil {
		return nil, fmt.Errorf("gorgop: %w", err)
	}
	return out, nil
}

// Config returns the op's RoIAlign configuration.
func (op *Op) Config() roialign.Config { return op.cfg }

func tensorType(dims int) G.TensorType { return G.TensorType{Dims: dims, Of: tensor.Float32} }

// Arity is 2: features and rois.
func (op *Op) Arity() int { return 2 }

// Type is (4-D float32, 2-D float32) -> 4-D float32.
func (op *Op) Type() hm.Type { return hm.NewFnType(tensorType(4), tensorType(2), tensorType(4)) }

// InferShape returns (K, C, OutH, OutW).
func (op *Op) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("gorgop: RoIAlign takes 2 inputs, got %d", len(in))
	}
	f, ok1 := in[0].(tensor.Shape)
	r, ok2 := in[1].(tensor.Shape)
	if !ok1 || !ok2 || len(f) != 4 || len(r) != 2 {
		return nil, fmt.Errorf("gorgop: %w: RoIAlign input shapes %v and %v, want (N, C, H, W) and (K, 5)", roialign.ErrInput, in[0], in[1])
	}
	return tensor.Shape{r[0], f[1], op.cfg.OutH, op.cfg.OutW}, nil
}

// Do runs the forward kernel into a new tensor.
func (op *Op) Do(vals ...G.Value) (G.Value, error) {
	f, r, err := float32s2(vals)
	if err != nil {
		return nil, err
	}
	s := shapeOf(f)
	k := r.Shape()[0]
	out := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(k, s.C, op.cfg.OutH, op.cfg.OutW))
	return op.UsePreallocDo(out, f, r)
}

// UsePreallocDo runs the forward kernel into prealloc.
func (op *Op) UsePreallocDo(prealloc G.Value, vals ...G.Value) (G.Value, error) {
	f, r, err := float32s2(vals)
	if err != nil {
		return nil, err
	}
	out, ok := prealloc.(*tensor.Dense)
	if !ok || out.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("gorgop: RoIAlign output buffer is %T, want a float32 *tensor.Dense", prealloc)
	}
	if err := roialign.ForwardSlice(out.Float32s(), f.Float32s(), shapeOf(f), r.Float32s(), op.cfg); err != nil {
		return nil, fmt.Errorf("gorgop: %w", err)
	}
	return out, nil
}

// ReturnsPtr is true: the result is a tensor the op owns.
func (op *Op) ReturnsPtr() bool { return true }

// CallsExtern is false: the kernels are Go.
func (op *Op) CallsExtern() bool { return false }

// OverwritesInput is -1: no input is overwritten.
func (op *Op) OverwritesInput() int { return -1 }

// WriteHash writes the op's identity, configuration included.
func (op *Op) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }

// Hashcode hashes String.
func (op *Op) Hashcode() uint32 { return hashOf(op) }

// String names the op and its configuration.
func (op *Op) String() string {
	c := op.cfg
	return fmt.Sprintf("RoIAlign{%dx%d, sampling %d, scale %g, aligned %v}", c.OutH, c.OutW, c.SamplingRatio, c.SpatialScale, c.Aligned)
}

// DiffWRT: differentiable with respect to the features, not the rois.
func (op *Op) DiffWRT(inputs int) []bool { return []bool{true, false} }

// SymDiff returns the features' gradient node, computed by the backward op
// from the rois and the output gradient; rois get none.
func (op *Op) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("gorgop: RoIAlign takes 2 inputs, got %d", len(inputs))
	}
	d, err := G.ApplyOp(&backwardOp{op.cfg}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, fmt.Errorf("gorgop: RoIAlign gradient: %w", err)
	}
	return G.Nodes{d, nil}, nil
}

// backwardOp computes d(loss)/d(features) from (features, rois, gradOut);
// features only supply the shape.
type backwardOp struct {
	cfg roialign.Config
}

func (op *backwardOp) Arity() int { return 3 }
func (op *backwardOp) Type() hm.Type {
	return hm.NewFnType(tensorType(4), tensorType(2), tensorType(4), tensorType(4))
}
func (op *backwardOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 3 {
		return nil, fmt.Errorf("gorgop: RoIAlign backward takes 3 inputs, got %d", len(in))
	}
	f, ok := in[0].(tensor.Shape)
	if !ok {
		return nil, fmt.Errorf("gorgop: RoIAlign backward: features shape is %T", in[0])
	}
	return f.Clone(), nil
}
func (op *backwardOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 3 {
		return nil, fmt.Errorf("gorgop: RoIAlign backward takes 3 inputs, got %d", len(vals))
	}
	f, ok := vals[0].(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("gorgop: RoIAlign backward: features are %T, want *tensor.Dense", vals[0])
	}
	out := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(f.Shape().Clone()...))
	return op.UsePreallocDo(out, vals...)
}
func (op *backwardOp) UsePreallocDo(prealloc G.Value, vals ...G.Value) (G.Value, error) {
	if len(vals) != 3 {
		return nil, fmt.Errorf("gorgop: RoIAlign backward takes 3 inputs, got %d", len(vals))
	}
	f, r, err := float32s2(vals[:2])
	if err != nil {
		return nil, err
	}
	g, ok := vals[2].(*tensor.Dense)
	if !ok || g.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("gorgop: RoIAlign backward: output gradient is %T, want a float32 *tensor.Dense", vals[2])
	}
	out, ok := prealloc.(*tensor.Dense)
	if !ok || out.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("gorgop: RoIAlign backward buffer is %T, want a float32 *tensor.Dense", prealloc)
	}
	dst := out.Float32s()
	clear(dst)
	if err := roialign.BackwardSlice(dst, g.Float32s(), shapeOf(f), r.Float32s(), op.cfg); err != nil {
		return nil, fmt.Errorf("gorgop: %w", err)
	}
	return out, nil
}
func (op *backwardOp) ReturnsPtr() bool      { return true }
func (op *backwardOp) CallsExtern() bool     { return false }
func (op *backwardOp) OverwritesInput() int  { return -1 }
func (op *backwardOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op *backwardOp) Hashcode() uint32      { return hashOf(op) }
func (op *backwardOp) String() string {
	return "RoIAlignBackward" + (&Op{op.cfg}).String()[len("RoIAlign"):]
}

// float32s2 checks that vals are two float32 dense tensors of rank 4 and 2.
func float32s2(vals []G.Value) (f, r *tensor.Dense, err error) {
	if len(vals) != 2 {
		return nil, nil, fmt.Errorf("gorgop: RoIAlign takes 2 inputs, got %d", len(vals))
	}
	f, ok1 := vals[0].(*tensor.Dense)
	r, ok2 := vals[1].(*tensor.Dense)
	if !ok1 || !ok2 || f.Dtype() != tensor.Float32 || r.Dtype() != tensor.Float32 {
		return nil, nil, fmt.Errorf("gorgop: %w: RoIAlign inputs are %v and %v, want float32 tensors", roialign.ErrInput, vals[0].Dtype(), vals[1].Dtype())
	}
	if f.Dims() != 4 || r.Dims() != 2 || r.Shape()[1] != 5 {
		return nil, nil, fmt.Errorf("gorgop: %w: RoIAlign input shapes %v and %v, want (N, C, H, W) and (K, 5)", roialign.ErrInput, f.Shape(), r.Shape())
	}
	return f, r, nil
}

func shapeOf(f *tensor.Dense) roialign.Shape {
	s := f.Shape()
	return roialign.Shape{N: s[0], C: s[1], H: s[2], W: s[3]}
}

func hashOf(s fmt.Stringer) uint32 {
	h := fnv.New32a()
	fmt.Fprint(h, s.String())
	return h.Sum32()
}
