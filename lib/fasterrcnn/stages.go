package fasterrcnn

import (
	"fmt"

	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/roi"
	"github.com/detlab/detlab/lib/rpn"
	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/transform"
)

// The stages of one forward pass, in torchvision's order (GeneralizedRCNN):
// features, RPN head and anchors, proposals, box head, post-processing.

// features runs the backbone on a prepared batch.
func (m *Model) features(g *nn.Graph, batch *tensor.Tensor) (*nn.Var, error) {
	f, err := m.Backbone.Forward(g, g.Input(batch))
	if err != nil {
		return nil, fmt.Errorf("fasterrcnn: backbone: %w", err)
	}
	s := f.Shape()
	if len(s) != 4 || s[0] != batch.Shape()[0] || s[1] != m.Backbone.OutChannels() || s[2] == 0 || s[3] == 0 {
		return nil, fmt.Errorf("fasterrcnn: backbone returned shape %v for a batch of %v, want (N, %d, Hf, Wf)", s, batch.Shape(), m.Backbone.OutChannels())
	}
	return f, nil
}

// rpnOut is the RPN head's output with the anchors it refers to.
type rpnOut struct {
	objectness, deltas *nn.Var // (N, A, Hf, Wf), (N, 4A, Hf, Wf)
	anchors            []box.Box
	perLevel           []int
}

// rpnForward runs the RPN head and generates the anchors of the batch.
func (m *Model) rpnForward(g *nn.Graph, feats *nn.Var, il *transform.ImageList) (rpnOut, error) {
	obj, del, err := m.RPNHead.Forward(g, feats)
	if err != nil {
		return rpnOut{}, fmt.Errorf("fasterrcnn: rpn head: %w", err)
	}
	fs := feats.Shape()
	a := m.cfg.Anchors.NumAnchorsPerLocation()
	if obj == nil || del == nil {
		return rpnOut{}, fmt.Errorf("fasterrcnn: rpn head returned no output")
	}
	os, ds := obj.Shape(), del.Shape()
	if len(os) != 4 || os[0] != fs[0] || os[1] != a || os[2] != fs[2] || os[3] != fs[3] ||
		len(ds) != 4 || ds[0] != fs[0] || ds[1] != 4*a || ds[2] != fs[2] || ds[3] != fs[3] {
		return rpnOut{}, fmt.Errorf("fasterrcnn: rpn head returned objectness %v and deltas %v, want (%d, %d, %d, %d) and (%d, %d, %d, %d)",
			os, ds, fs[0], a, fs[2], fs[3], fs[0], 4*a, fs[2], fs[3])
	}
	bs := il.Tensor.Shape()
	gr := &m.grid
	if gr.anchors == nil || gr.padH != bs[2] || gr.padW != bs[3] || gr.featH != fs[2] || gr.featW != fs[3] {
		level := [][2]int{{fs[2], fs[3]}}
		anchors, err := m.anchors.Generate(bs[2], bs[3], level)
		if err != nil {
			return rpnOut{}, fmt.Errorf("fasterrcnn: %w", err)
		}
		per, err := m.anchors.NumAnchors(level)
		if err != nil {
			return rpnOut{}, fmt.Errorf("fasterrcnn: %w", err)
		}
		*gr = anchorGrid{padH: bs[2], padW: bs[3], featH: fs[2], featW: fs[3], anchors: anchors, perLevel: per}
	}
	anchors, per := gr.anchors, gr.perLevel
	return rpnOut{objectness: obj, deltas: del, anchors: anchors, perLevel: per}, nil
}

// proposals selects each image's proposals (filter_proposals) from the RPN
// output, with the training or test top-n. The lists are the model's
// memory, valid until its next forward pass.
func (m *Model) proposals(r rpnOut, il *transform.ImageList, training bool) ([][]box.Box, error) {
	if err := nn.Sync(m.Backend()); err != nil { // host stage: the head may still be queued
		return nil, fmt.Errorf("fasterrcnn: %w", err)
	}
	levels := [2][1]*tensor.Tensor{{r.objectness.Value}, {r.deltas.Value}}
	obj, del, n, total, err := rpn.FlattenPredictionsTo(m.flatObj, m.flatDel, levels[0][:], levels[1][:])
	if err != nil {
		return nil, fmt.Errorf("fasterrcnn: %w", err)
	}
	m.flatObj, m.flatDel = obj, del
	if len(m.pscr) < n {
		m.pscr, m.props = make([]rpn.ProposalScratch, n), make([][]box.Box, n)
	}
	out := m.props[:n]
	nb := m.nmsBackend()
	for i := range n {
		p, _, err := m.pscr[i].Filter(nb, obj[i*total:(i+1)*total], del[i*total*4:(i+1)*total*4],
			r.anchors, r.perLevel, il.ImageSizes[i].H, il.ImageSizes[i].W, m.cfg.RPN.Proposals(training))
		if err != nil {
			return nil, fmt.Errorf("fasterrcnn: image %d: %w", i, err)
		}
		out[i] = p
	}
	return out, nil
}

// boxHeads pools the proposals' features and runs the box head and the
// predictor: class logits (R, NumClasses) and box deltas (R, 4*NumClasses),
// rows in image order.
func (m *Model) boxHeads(g *nn.Graph, feats *nn.Var, props [][]box.Box, il *transform.ImageList) (logits, reg *nn.Var, err error) {
	// The model's memory: the RoI pooling copies what it keeps.
	if len(m.flat) < len(props) {
		m.flat = make([][]float32, len(props))
	}
	if len(m.sizes) < len(il.ImageSizes) {
		m.sizes = make([][2]int, len(il.ImageSizes))
	}
	flat, sizes := m.flat[:len(props)], m.sizes[:len(il.ImageSizes)]
	r := 0
	for i, p := range props {
		flat[i] = box.AppendFlatten(flat[i][:0], p)
		r += len(p)
	}
	for i, s := range il.ImageSizes {
		sizes[i] = [2]int{s.H, s.W}
	}
	pooled, err := m.pool.Apply(g, feats, flat, sizes)
	if err != nil {
		return nil, nil, fmt.Errorf("fasterrcnn: roi pool: %w", err)
	}
	x, err := m.BoxHead.Forward(g, pooled)
	if err != nil {
		return nil, nil, fmt.Errorf("fasterrcnn: box head: %w", err)
	}
	if logits, reg, err = m.Predictor.Forward(g, x); err != nil {
		return nil, nil, fmt.Errorf("fasterrcnn: box predictor: %w", err)
	}
	c := m.cfg.NumClasses
	if ls, rs := logits.Shape(), reg.Shape(); len(ls) != 2 || ls[0] != r || ls[1] != c || len(rs) != 2 || rs[0] != r || rs[1] != 4*c {
		return nil, nil, fmt.Errorf("fasterrcnn: predictor returned %v and %v for %d proposals, want (%d, %d) and (%d, %d)", ls, rs, r, r, c, r, 4*c)
	}
	return logits, reg, nil
}

// nmsBackend returns where the model's NMS compares boxes: the model's
// backend when it offers NMS (lib/cuda's does, for a model on a GPU),
// else nil, the host.
func (m *Model) nmsBackend() box.NMSBackend {
	nb, _ := m.Backend().(box.NMSBackend)
	return nb
}

// postprocess turns the predictor's outputs into each image's detections
// in resized-image pixels.
func (m *Model) postprocess(logits, reg *tensor.Tensor, props [][]box.Box, il *transform.ImageList) ([]roi.Detections, error) {
	if err := nn.Sync(m.Backend()); err != nil { // host stage: the predictor may still be queued
		return nil, fmt.Errorf("fasterrcnn: %w", err)
	}
	c := m.cfg.NumClasses
	out := make([]roi.Detections, len(props))
	nb := m.nmsBackend()
	start := 0
	for i, p := range props {
		k := len(p)
		d, err := roi.PostprocessDetectionsWith(nb, logits.Data()[start*c:(start+k)*c], reg.Data()[start*4*c:(start+k)*4*c], p, c,
			il.ImageSizes[i].H, il.ImageSizes[i].W, m.cfg.RoI)
		if err != nil {
			return nil, fmt.Errorf("fasterrcnn: image %d: %w", i, err)
		}
		out[i] = d
		start += k
	}
	return out, nil
}
