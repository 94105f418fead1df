// Package summary describes a Faster R-CNN model layer by layer, as
// torchinfo's summary does for PyTorch: each layer (module) with its output
// shape for a given batch and image size, its parameter count and whether
// it trains, the totals (trainable and frozen), an estimate of the
// activation memory, and the compute backend and device (for a model on a
// GPU, Config.Device "cuda:N", the GPU's name and the memory held there). A
// notebook cell ending in the summary shows it as an HTML table; String
// gives the same as text.
//
//	s, err := summary.Of(model, 2, 480, 640)   // batch 2 of 480x640 images
//	s                                           // the table
//	fmt.Println(s.TotalParams, s.TrainableParams)
package summary

import (
	"errors"
	"fmt"
	"html"
	"strings"

	"github.com/detlab/detlab/lib/compute"
	"github.com/detlab/detlab/lib/fasterrcnn"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/resnet"
	"github.com/detlab/detlab/lib/roi"
	"github.com/detlab/detlab/lib/rpn"
	"github.com/detlab/detlab/lib/transform"
)

// ErrInput reports a nil model or a non-positive batch or image size.
var ErrInput = errors.New("summary: bad input")

// TrainingFactor multiplies the forward activations to estimate training
// memory: the backward pass keeps every output for the gradient and
// allocates a gradient of the same size (2x), and the ReLUs, BatchNorm
// statistics and intermediate buffers the table does not list add roughly
// another output's worth (3x in all). It is an estimate, not a measurement.
const TrainingFactor = 3.0

// Layer is one row of the summary.
type Layer struct {
	// Name is the module's state-dict prefix ("backbone.4.0.conv1"), or a
	// descriptive name for modules without parameters ("roi_pool").
	Name string
	// Kind describes the module ("Conv2d(64, 64, k=3, s=1)").
	Kind string
	// OutputShape is the output for the summary's input; nil when the
	// module does not say (a notebook-defined head without OutputShape).
	OutputShape []int
	// Params counts the module's parameters; Trainable how many of them
	// train (requires_grad).
	Params, Trainable int
}

// Summary is a model's layer table and totals.
type Summary struct {
	// Batch, Height and Width are the images summarised (before the
	// transform); Input is the network input after resizing and padding.
	Batch, Height, Width int
	Input                []int
	// RoIs is the number of regions the box head sees in training (the
	// batch times roi.Config.BatchSizePerImage).
	RoIs   int
	Layers []Layer
	// TotalParams counts every parameter (each counted once); Trainable
	// and Frozen split it.
	TotalParams, TrainableParams, FrozenParams int
	// ActivationBytes sums the listed outputs at 4 bytes per float32;
	// TrainingBytes is ActivationBytes times TrainingFactor.
	ActivationBytes, TrainingBytes int64
	// Backend is compute.Backend(); Device is the name of the backend the
	// model runs on (the CPU's, or the GPU's for a model built with
	// Config.Device "cuda:N").
	Backend, Device string
	// DeviceMemoryInUse and DeviceMemoryPeak are the bytes held on the
	// model's GPU now and at the peak (every model of the process on that
	// GPU counted); both 0 on the CPU.
	DeviceMemoryInUse, DeviceMemoryPeak int64
}

type shaper interface {
	OutputShape(in []int) ([]int, error)
}

// Of summarises m for a batch of batch images of height x width pixels
// (before the model's transform, which resizes them to Config.MinSize /
// MaxSize and pads them to SizeDivisible). The default parts (ResNet18
// body, RPN ConvHead, TwoMLPHead, FastRCNNPredictor) are listed layer by
// layer with output shapes; a notebook-defined part is one row with its
// parameters, and its output shape when it has an OutputShape method.
func Of(m *fasterrcnn.Model, batch, height, width int) (*Summary, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil model", ErrInput)
	}
	if batch <= 0 || height <= 0 || width <= 0 {
		return nil, fmt.Errorf("%w: batch %d of %dx%d images", ErrInput, batch, height, width)
	}
	cfg := m.Config()
	sd := m.StateDict()
	s := &Summary{Batch: batch, Height: height, Width: width, Backend: compute.Backend(), Device: m.Backend().Name()}
	s.DeviceMemoryInUse, s.DeviceMemoryPeak, _ = m.DeviceMemory()

	// The network input: transform resize, then padding.
	h, w := height, width
	if cfg.MinSize > 0 && cfg.MaxSize > 0 {
		rs := transform.ResizedSize(height, width, transform.Scale(height, width, cfg.MinSize, cfg.MaxSize))
		h, w = rs.H, rs.W
	}
	if d := cfg.SizeDivisible; d > 1 {
		h, w = (h+d-1)/d*d, (w+d-1)/d*d
	}
	s.Input = []int{batch, 3, h, w}

	b := &builder{sd: sd, s: s}
	feat := b.backbone(m.Backbone, s.Input)
	b.rpnHead(m.RPNHead, feat)
	s.RoIs = batch * cfg.RoI.BatchSizePerImage
	var pooled []int
	if feat != nil {
		pooled = []int{s.RoIs, feat[1], cfg.RoIOutputSize, cfg.RoIOutputSize}
	}
	b.add(Layer{Name: "roi_pool", Kind: fmt.Sprintf("MultiScaleRoIAlign(%d, sampling %d)", cfg.RoIOutputSize, cfg.RoISamplingRatio), OutputShape: pooled})
	rep := b.boxHead(m.BoxHead, pooled)
	b.predictor(m.Predictor, rep)

	// Totals from the state dict, each parameter once.
	seen := map[*nn.Param]bool{}
	for _, k := range sd.Keys {
		if p := sd.Param(k); p != nil && !seen[p] {
			seen[p] = true
			n := p.Value.Len()
			s.TotalParams += n
			if p.Trainable {
				s.TrainableParams += n
			}
		}
	}
	s.FrozenParams = s.TotalParams - s.TrainableParams
	for _, l := range s.Layers {
		if l.OutputShape != nil {
			s.ActivationBytes += 4 * int64(prod(l.OutputShape))
		}
	}
	s.TrainingBytes = int64(float64(s.ActivationBytes) * TrainingFactor)
	return s, nil
}

type builder struct {
	sd *nn.StateDict
	s  *Summary
}

// count returns the parameters (and trainable ones) under prefix.
func (b *builder) count(prefix string) (n, t int) {
	for _, k := range b.sd.Keys {
		if !strings.HasPrefix(k, prefix+".") {
			continue
		}
		if p := b.sd.Param(k); p != nil {
			n += p.Value.Len()
			if p.Trainable {
				t += p.Value.Len()
			}
		}
	}
	return n, t
}

func (b *builder) add(l Layer) {
	if l.Name != "" && l.Params == 0 {
		l.Params, l.Trainable = b.count(l.Name)
	}
	b.s.Layers = append(b.s.Layers, l)
}

// module adds one row for a module with an OutputShape method and returns
// its output (nil when in is nil or the shape fails).
func (b *builder) module(name, kind string, m shaper, in []int) []int {
	var out []int
	if in != nil && m != nil {
		if o, err := m.OutputShape(in); err == nil {
			out = o
		}
	}
	b.add(Layer{Name: name, Kind: kind, OutputShape: out})
	return out
}

func convKind(c *nn.Conv2d) string {
	return fmt.Sprintf("Conv2d(%d, %d, k=%d, s=%d)", c.InC, c.OutC, c.Kernel, c.Stride)
}

func (b *builder) backbone(bb fasterrcnn.Backbone, in []int) []int {
	body, ok := bb.(*resnet.Body)
	if !ok || body.Net == nil {
		var out []int
		if sh, ok := bb.(shaper); ok {
			out, _ = sh.OutputShape(in)
		}
		b.add(Layer{Name: "backbone", Kind: fmt.Sprintf("%T", bb), OutputShape: out})
		return out
	}
	n := body.Net
	x := b.module("backbone.0", convKind(n.Conv1), n.Conv1, in)
	x = b.module("backbone.1", "BatchNorm2d + ReLU", n.BN1, x)
	x = b.module("backbone.3", "MaxPool2d(3, s=2)", nn.MaxPool2d{Kernel: 3, Stride: 2, Padding: 1}, x)
	for li, blocks := range n.Layers {
		for bi, blk := range blocks {
			p := fmt.Sprintf("backbone.%d.%d", 4+li, bi)
			blockIn := x
			y := b.module(p+".conv1", convKind(blk.Conv1), blk.Conv1, blockIn)
			y = b.module(p+".bn1", "BatchNorm2d + ReLU", blk.BN1, y)
			y = b.module(p+".conv2", convKind(blk.Conv2), blk.Conv2, y)
			y = b.module(p+".bn2", "BatchNorm2d (+ skip, ReLU)", blk.BN2, y)
			if blk.DownConv != nil {
				d := b.module(p+".downsample.0", convKind(blk.DownConv), blk.DownConv, blockIn)
				b.module(p+".downsample.1", "BatchNorm2d", blk.DownBN, d)
			}
			x = y
		}
	}
	return x
}

func (b *builder) rpnHead(h rpn.Head, feat []int) {
	ch, ok := h.(*rpn.ConvHead)
	if !ok {
		var out []int
		if sh, ok := h.(shaper); ok && feat != nil {
			out, _ = sh.OutputShape(feat)
		}
		b.add(Layer{Name: "rpn.head", Kind: fmt.Sprintf("%T", h), OutputShape: out})
		return
	}
	x := b.module("rpn.head.conv.0.0", convKind(ch.Conv)+" + ReLU", ch.Conv, feat)
	b.module("rpn.head.cls_logits", convKind(ch.ClsLogits), ch.ClsLogits, x)
	b.module("rpn.head.bbox_pred", convKind(ch.BBoxPred), ch.BBoxPred, x)
}

func (b *builder) boxHead(h roi.BoxHead, pooled []int) []int {
	th, ok := h.(*roi.TwoMLPHead)
	if !ok {
		var out []int
		if sh, ok := h.(shaper); ok && pooled != nil {
			out, _ = sh.OutputShape(pooled)
		}
		b.add(Layer{Name: "roi_heads.box_head", Kind: fmt.Sprintf("%T", h), OutputShape: out})
		return out
	}
	var flat []int
	if pooled != nil {
		flat = []int{pooled[0], prod(pooled[1:])}
	}
	x := b.module("roi_heads.box_head.fc6", fmt.Sprintf("Linear(%d, %d) + ReLU", th.FC6.In, th.FC6.Out), th.FC6, flat)
	return b.module("roi_heads.box_head.fc7", fmt.Sprintf("Linear(%d, %d) + ReLU", th.FC7.In, th.FC7.Out), th.FC7, x)
}

func (b *builder) predictor(p roi.Predictor, rep []int) {
	fp, ok := p.(*roi.FastRCNNPredictor)
	if !ok {
		b.add(Layer{Name: "roi_heads.box_predictor", Kind: fmt.Sprintf("%T", p)})
		return
	}
	b.module("roi_heads.box_predictor.cls_score", fmt.Sprintf("Linear(%d, %d)", fp.ClsScore.In, fp.ClsScore.Out), fp.ClsScore, rep)
	b.module("roi_heads.box_predictor.bbox_pred", fmt.Sprintf("Linear(%d, %d)", fp.BBoxPred.In, fp.BBoxPred.Out), fp.BBoxPred, rep)
}

func prod(s []int) int {
	n := 1
	for _, v := range s {
		n *= v
	}
	return n
}

func shapeString(s []int) string {
	if s == nil {
		return "?"
	}
	p := make([]string, len(s))
	for i, v := range s {
		p[i] = fmt.Sprint(v)
	}
	return "(" + strings.Join(p, ", ") + ")"
}

func trainFlag(l Layer) string {
	switch {
	case l.Params == 0:
		return "-"
	case l.Trainable == l.Params:
		return "yes"
	case l.Trainable == 0:
		return "no"
	}
	return "partly"
}

// Bytes formats a byte count in binary units ("1.5 GiB").
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGT"[i])
}

// group writes n with thousands separators (11,176,512).
func group(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (s *Summary) footer() []string {
	return []string{
		fmt.Sprintf("input: %d image(s) of %dx%d -> network input %s; %d RoIs in training", s.Batch, s.Height, s.Width, shapeString(s.Input), s.RoIs),
		fmt.Sprintf("parameters: %s total, %s trainable, %s frozen", group(s.TotalParams), group(s.TrainableParams), group(s.FrozenParams)),
		fmt.Sprintf("activations: %s forward (listed outputs x 4 bytes), about %s in training (x%g)", Bytes(s.ActivationBytes), Bytes(s.TrainingBytes), TrainingFactor),
		s.deviceLine(),
	}
}

// deviceLine names the compute and the device, with the GPU's memory when
// the model is on one.
func (s *Summary) deviceLine() string {
	l := fmt.Sprintf("compute: %s; device: %s", s.Backend, s.Device)
	if s.DeviceMemoryInUse > 0 || s.DeviceMemoryPeak > 0 {
		l += fmt.Sprintf("; GPU memory %s in use, %s peak", Bytes(s.DeviceMemoryInUse), Bytes(s.DeviceMemoryPeak))
	}
	return l
}

// String renders the summary as a fixed-width text table.
func (s *Summary) String() string {
	if s == nil {
		return "summary(nil)"
	}
	rows := [][]string{{"layer", "kind", "output shape", "params", "trains"}}
	for _, l := range s.Layers {
		rows = append(rows, []string{l.Name, l.Kind, shapeString(l.OutputShape), group(l.Params), trainFlag(l)})
	}
	width := make([]int, 5)
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	var b strings.Builder
	for ri, r := range rows {
		for i, c := range r {
			if i == 3 {
				fmt.Fprintf(&b, "%*s  ", width[i], c)
			} else {
				fmt.Fprintf(&b, "%-*s  ", width[i], c)
			}
		}
		b.WriteString("\n")
		if ri == 0 {
			total := 0
			for _, w := range width {
				total += w + 2
			}
			b.WriteString(strings.Repeat("-", total) + "\n")
		}
	}
	for _, f := range s.footer() {
		b.WriteString(f + "\n")
	}
	return b.String()
}

// HTML renders the summary as an HTML table (what the notebook shows).
func (s *Summary) HTML() string {
	if s == nil {
		return "<p>summary(nil)</p>"
	}
	var b strings.Builder
	b.WriteString(`<table style="font-family:monospace;font-size:12px;border-collapse:collapse">`)
	b.WriteString("<thead><tr><th style=\"text-align:left\">layer</th><th style=\"text-align:left\">kind</th><th style=\"text-align:left\">output shape</th><th style=\"text-align:right\">params</th><th>trains</th></tr></thead><tbody>")
	for _, l := range s.Layers {
		style := ""
		if trainFlag(l) == "no" {
			style = ` style="color:#888"`
		}
		fmt.Fprintf(&b, "<tr%s><td style=\"text-align:left\">%s</td><td style=\"text-align:left\">%s</td><td style=\"text-align:left\">%s</td><td style=\"text-align:right\">%s</td><td>%s</td></tr>",
			style, html.EscapeString(l.Name), html.EscapeString(l.Kind), shapeString(l.OutputShape), group(l.Params), trainFlag(l))
	}
	b.WriteString("</tbody></table><p style=\"font-family:monospace;font-size:12px\">")
	for i, f := range s.footer() {
		if i > 0 {
			b.WriteString("<br>")
		}
		b.WriteString(html.EscapeString(f))
	}
	b.WriteString("</p>")
	return b.String()
}
