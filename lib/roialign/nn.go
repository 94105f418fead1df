package roialign

import (
	"fmt"

	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/tensor"
)

// Backend is implemented by an nn.Backend that runs RoIAlign itself (on a
// GPU: lib/cuda's Backend). Apply finds it on the graph's backend by a type
// assertion and otherwise runs the host kernels. Both methods take the
// arguments of ForwardSlice and BackwardSlice and must give their results;
// they return an error wrapping ErrInput for arguments those would reject
// (see Check), or the device's error.
type Backend interface {
	// RoIAlignForward is ForwardSlice: out (K, C, OutH, OutW) is
	// overwritten with RoIAlign of features (shape s) over rois.
	RoIAlignForward(out, features []float32, s Shape, rois []float32, cfg Config) error
	// RoIAlignBackward is BackwardSlice: the gradient for gradOut is ADDED
	// into gradFeatures (shape s).
	RoIAlignBackward(gradFeatures, gradOut []float32, s Shape, rois []float32, cfg Config) error
}

// Apply runs RoIAlign on a graph: features (N, C, H, W) pooled over rois
// (K, 5) rows [batch_index, x1, y1, x2, y2] into a (K, C, OutH, OutW) Var.
// When g records, Backward sends the exact gradient (the adjoint of the
// forward kernel, BackwardSlice) to features; rois are constants, as in
// torchvision, where proposals are detached. The rois are copied, so the
// caller may reuse its slice.
//
// When g's backend implements Backend (lib/cuda's does), the pooling and
// its gradient run there, with the same results; otherwise on the host.
//
// Under g's autocast (nn.Graph.WithAutocast with BFloat16 or Float16) the
// features are rounded to that precision before pooling and the output
// gradient before the backward scatter; accumulation, the output and the
// feature gradient stay float32 (emulated rounding, float32 kernels). Note
// that torchvision's own autocast rule runs roi_align in float32; detlab
// rounds its operands so the whole box path follows the region's precision.
func Apply(g *nn.Graph, features *nn.Var, rois *tensor.Tensor, cfg Config) (*nn.Var, error) {
	if g == nil || features == nil || features.Value == nil {
		return nil, fmt.Errorf("%w: Apply needs a graph and features", ErrInput)
	}
	if rois == nil {
		return nil, fmt.Errorf("%w: rois is nil", ErrInput)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := shapeOf("features", features.Shape())
	if err != nil {
		return nil, err
	}
	if rs := rois.Shape(); len(rs) != 2 || rs[1] != 5 {
		return nil, fmt.Errorf("%w: rois has shape %v, want (K, 5)", ErrInput, rs)
	}
	// The copy the backward pass reads: g's memory (recycled with an
	// arena).
	r := g.NewTensor(rois.Len()).Data()
	copy(r, rois.Data())
	k, err := CheckRois(r, s.N)
	if err != nil {
		return nil, err
	}
	out := g.NewTensor(k, s.C, cfg.OutH, cfg.OutW)
	feat := features.Value.Data()
	ac := g.Autocast()
	if ac != nn.Float32 {
		// Autocast: pool reduced-precision features, accumulate in float32.
		feat = g.RoundedCopy(ac, feat, features.Shape()...)
	}
	be, _ := g.Backend().(Backend)
	if be != nil {
		err = be.RoIAlignForward(out.Data(), feat, s, r, cfg)
	} else {
		err = ForwardSlice(out.Data(), feat, s, r, cfg)
	}
	if err != nil {
		return nil, err
	}
	return g.Op(out, []*nn.Var{features}, func(gy *tensor.Tensor, gin []*tensor.Tensor) {
		if gin[0] == nil {
			return
		}
		dy := gy.Data()
		if ac != nn.Float32 {
			// From the graph's arena: a fresh 100 MB buffer per step
			// cost more in page faults than the pooling itself.
			dy = g.RoundedCopy(ac, dy, gy.Shape()...)
		}
		if be == nil {
			// Shapes and rois were validated above; the kernel cannot fail.
			_ = BackwardSlice(gin[0].Data(), dy, s, r, cfg)
			return
		}
		// The arguments were validated above, so an error here is the
		// device's, which a backward function cannot return.
		if err := be.RoIAlignBackward(gin[0].Data(), dy, s, r, cfg); err != nil {
			panic(fmt.Errorf("roialign: backward on %s: %w", g.Backend().Name(), err))
		}
	}), nil
}

// Apply is Forward on a graph: it pools features (N, C, H, W) over boxes
// (one flat x1,y1,x2,y2 list per image) and, when g records, sends the
// exact gradient back to features. The scale is inferred and cached on the
// first call, exactly as Forward does.
func (m *MultiScale) Apply(g *nn.Graph, features *nn.Var, boxes [][]float32, imageSizes [][2]int) (*nn.Var, error) {
	if features == nil || features.Value == nil {
		return nil, fmt.Errorf("%w: features is nil", ErrInput)
	}
	s, err := shapeOf("features", features.Shape())
	if err != nil {
		return nil, err
	}
	if len(boxes) != s.N {
		return nil, fmt.Errorf("%w: %d box lists for a batch of %d images", ErrInput, len(boxes), s.N)
	}
	k, err := countRois(boxes)
	if err != nil {
		return nil, err
	}
	rois := g.NewTensor(k, 5) // Rois(boxes) in g's memory
	roisInto(rois.Data(), boxes)
	if !m.inferred {
		if len(imageSizes) == 0 {
			return nil, fmt.Errorf("%w: no image sizes to infer the scale from", ErrInput)
		}
		maxH := 0
		for _, sz := range imageSizes {
			if sz[0] <= 0 || sz[1] <= 0 {
				return nil, fmt.Errorf("%w: image size %v, want positive", ErrInput, sz)
			}
			maxH = max(maxH, sz[0])
		}
		sc, err := InferScale(s.H, maxH)
		if err != nil {
			return nil, err
		}
		m.scale, m.inferred = sc, true
	}
	return Apply(g, features, rois, m.Config())
}
