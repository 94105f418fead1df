package nn

import (
	"fmt"

	"github.com/detlab/detlab/lib/tensor"
)

// Permute returns x with its dimensions reordered (torch's
// x.permute(perm...).contiguous()); the RPN uses (0, 2, 3, 1) to turn an
// NCHW head output into (N, H, W, C) order.
func Permute(g *Graph, x *Var, perm ...int) (*Var, error) {
	in := x.Shape()
	if len(perm) != len(in) {
		return nil, fmt.Errorf("nn: Permute: %d axes for a %d-D input", len(perm), len(in))
	}
	seen := make([]bool, len(in))
	out := make([]int, len(in))
	for i, p := range perm {
		if p < 0 || p >= len(in) || seen[p] {
			return nil, fmt.Errorf("nn: Permute: %v is not a permutation of %d axes", perm, len(in))
		}
		seen[p] = true
		out[i] = in[p]
	}
	// inStride[d]: stride of input dimension d; walking the output in
	// row-major order visits input offsets by the permuted strides.
	inStride := make([]int, len(in))
	s := 1
	for d := len(in) - 1; d >= 0; d-- {
		inStride[d] = s
		s *= in[d]
	}
	strides := make([]int, len(in))
	for i, p := range perm {
		strides[i] = inStride[p]
	}
	res := g.newTensorNoZero(out...)
	g.hostSync()
	src := make([]int, res.Len()) // output index -> input offset
	idx := make([]int, len(out))
	off := 0
	for i := range src {
		src[i] = off
		for d := len(out) - 1; d >= 0; d-- {
			idx[d]++
			off += strides[d]
			if idx[d] < out[d] {
				break
			}
			off -= idx[d] * strides[d]
			idx[d] = 0
		}
	}
	xd, od := x.Value.Data(), res.Data()
	for i, o := range src {
		od[i] = xd[o]
	}
	return g.Op(res, g.varList(x), func(gy *tensor.Tensor, gin []*tensor.Tensor) {
		dx := gin[0].Data()
		for i, d := range gy.Data() {
			dx[src[i]] += d
		}
	}), nil
}

// Concat joins xs along dimension 0; the other dimensions must agree.
func Concat(g *Graph, xs ...*Var) (*Var, error) {
	if len(xs) == 0 {
		return nil, fmt.Errorf("nn: Concat: nothing to join")
	}
	first := xs[0].Shape()
	if len(first) == 0 {
		return nil, fmt.Errorf("nn: Concat: scalar input")
	}
	rows := 0
	for _, x := range xs {
		s := x.Shape()
		if len(s) != len(first) || !tensor.SameShape(s[1:], first[1:]) {
			return nil, fmt.Errorf("nn: Concat: shapes %v and %v differ beyond dimension 0", first, s)
		}
		rows += s[0]
	}
	shape := append([]int{rows}, first[1:]...)
	out := g.newTensorNoZero(shape...)
	g.hostSync()
	od := out.Data()
	off := 0
	for _, x := range xs {
		copy(od[off:], x.Value.Data())
		off += x.Value.Len()
	}
	return g.Op(out, xs, func(gy *tensor.Tensor, gin []*tensor.Tensor) {
		d := gy.Data()
		off := 0
		for i, x := range xs {
			n := x.Value.Len()
			if gin[i] != nil {
				dx := gin[i].Data()
				for j, v := range d[off : off+n] {
					dx[j] += v
				}
			}
			off += n
		}
	}), nil
}
