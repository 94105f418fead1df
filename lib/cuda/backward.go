package cuda

import (
	"fmt"

	"github.com/detlab/detlab/lib/nn"
)

// The backward epilogues of lib/nn's fused ConvBN and Linear's bias
// passes (detlab_convbn_backward, detlab_bias_add, detlab_bias_grad): with
// them a training step's output gradients, residual gradients and fc6/fc7
// activations stay in device memory instead of migrating to the host for
// a loop. Each gives the host loop's result bit for bit and panics with an
// *OpError on a device failure or on slices shorter than their sizes.

// ConvBNBackward implements nn.ConvBNBackend: for a fused ConvBN's output
// y (n, k, hw) and its gradient dy, with pass = !relu || y > 0, it adds dy
// into dres where pass and writes dc = (pass ? dy : +0) * scale[c]; dc or
// dres may be nil.
func (b *Backend) ConvBNBackward(dy, y, scale, dc, dres []float32, n, k, hw int, relu bool) {
	if n < 0 || k < 0 || hw < 0 {
		panic(&OpError{Op: "ConvBNBackward", Err: fmt.Errorf("negative size n=%d k=%d hw=%d", n, k, hw)})
	}
	total := n * k * hw
	if total == 0 || (dc == nil && dres == nil) {
		return
	}
	sameLen("ConvBNBackward", total, "(dy, y)", dy, y)
	if dc != nil {
		sameLen("ConvBNBackward", k, "(scale)", scale)
		sameLen("ConvBNBackward", total, "(dc)", dc)
	}
	if dres != nil {
		sameLen("ConvBNBackward", total, "(dres)", dres)
	}
	b.run("ConvBNBackward", func(s *scope) {
		pdy, py := s.f32(dy[:total], read), s.f32(y[:total], read)
		var pscale, pdc, pdres uint64
		if dc != nil {
			pscale, pdc = s.f32(scale[:k], read), s.f32(dc[:total], write)
		}
		if dres != nil {
			pdres = s.f32(dres[:total], readWrite)
		}
		s.launch("detlab_convbn_backward", gridFor(total), pArg(pdy), pArg(py), pArg(pscale), pArg(pdc), pArg(pdres),
			iArg(n), iArg(k), iArg(hw), bArg(relu))
	})
}

// BiasAdd implements nn.BiasBackend: y[r, j] += bias[j] for y (rows,
// cols).
func (b *Backend) BiasAdd(y, bias []float32, rows, cols int) {
	if rows < 0 || cols < 0 {
		panic(&OpError{Op: "BiasAdd", Err: fmt.Errorf("negative size rows=%d cols=%d", rows, cols)})
	}
	total := rows * cols
	if total == 0 {
		return
	}
	sameLen("BiasAdd", total, "(y)", y)
	sameLen("BiasAdd", cols, "(bias)", bias)
	b.run("BiasAdd", func(s *scope) {
		py, pb := s.f32(y[:total], readWrite), s.f32(bias[:cols], read)
		s.launch("detlab_bias_add", gridFor(total), pArg(py), pArg(pb), iArg(rows), iArg(cols), iArg(1))
	})
}

// BiasGrad implements nn.BiasBackend: db[j] += float32 of the float64 sum
// of dy[r, j] over the rows in order, for dy (rows, cols).
func (b *Backend) BiasGrad(dy, db []float32, rows, cols int) {
	if rows < 0 || cols < 0 {
		panic(&OpError{Op: "BiasGrad", Err: fmt.Errorf("negative size rows=%d cols=%d", rows, cols)})
	}
	if cols == 0 {
		return
	}
	sameLen("BiasGrad", cols, "(db)", db)
	if rows == 0 {
		// float32(0) added to db: -0 becomes +0, as the host loop does.
		b.run("BiasGrad", func(s *scope) {
			pdb := s.f32(db[:cols], readWrite)
			s.launch("detlab_bias_grad", gridFor(cols), pArg(0), pArg(pdb), iArg(0), iArg(cols))
		})
		return
	}
	sameLen("BiasGrad", rows*cols, "(dy)", dy)
	b.run("BiasGrad", func(s *scope) {
		pdy, pdb := s.f32(dy[:rows*cols], read), s.f32(db[:cols], readWrite)
		s.launch("detlab_bias_grad", gridFor(cols), pArg(pdy), pArg(pdb), iArg(rows), iArg(cols))
	})
}

// The optional nn interfaces the operations above implement.
var (
	_ nn.ConvBNBackend = (*Backend)(nil)
	_ nn.BiasBackend   = (*Backend)(nil)
)
