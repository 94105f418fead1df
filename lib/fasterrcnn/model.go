package fasterrcnn

import (
	"fmt"
	"math/rand"
	"strings"

	"github.com/detlab/detlab/lib/anchor"
	"github.com/detlab/detlab/lib/box"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/resnet"
	"github.com/detlab/detlab/lib/roi"
	"github.com/detlab/detlab/lib/roialign"
	"github.com/detlab/detlab/lib/rpn"
	"github.com/detlab/detlab/lib/transform"
	"github.com/detlab/detlab/lib/weights"
)

// State-dict prefixes of the parts, torchvision's attribute paths.
const (
	prefixBackbone  = "backbone."
	prefixRPNHead   = "rpn.head."
	prefixBoxHead   = "roi_heads.box_head."
	prefixPredictor = "roi_heads.box_predictor."
)

// Model is a Faster R-CNN: transform, backbone, RPN and box head. Build it
// with New. A Model is not safe for concurrent use.
type Model struct {
	// The parts, as built by New (the configured ones or the defaults).
	Backbone  Backbone
	RPNHead   rpn.Head
	BoxHead   roi.BoxHead
	Predictor roi.Predictor

	cfg       Config
	transform *transform.Transform
	anchors   *anchor.Generator
	pool      *roialign.MultiScale
	rng       *rand.Rand
	// tscr and sscr are the per-image target and sampling scratch of a
	// training step (rpn.TargetScratch, roi.TrainingScratch).
	tscr []rpn.TargetScratch
	sscr []roi.TrainingScratch
	// pscr, props, flatObj and flatDel are the proposal filtering's
	// memory, kept between forward passes (rpn.ProposalScratch per image,
	// the per-image proposal lists, the flattened head outputs).
	pscr             []rpn.ProposalScratch
	props            [][]box.Box
	flatObj, flatDel []float32
	// batch and rt are Losses' batch description and rescaled targets;
	// ats, pos, neg, labels and regTargets LossesBatch's sampled targets.
	batch      transform.ImageList
	rt         []Target
	ats        []rpn.AnchorTargets
	pos, neg   [][]int
	labels     []int
	regTargets []float32
	// allParams lists every parameter of the state dict (trainable or
	// not) for ZeroGrad, as of allParamsKeys keys.
	allParams     []*nn.Param
	allParamsKeys int
	// flat and sizes are boxHeads' RoIAlign arguments.
	flat     [][]float32
	sizes    [][2]int
	training bool
	state    *nn.StateDict
	// arena recycles activation and gradient buffers between forward
	// passes (graphs give them back on Release).
	arena *nn.Arena
	// autocast is the precision of the heavy ops in training forward
	// passes (nn.Float32: autocast off); see SetAutocast.
	autocast nn.Precision
	// backend runs the model's kernels; nil means nn.CurrentBackend() at
	// the time of each forward pass.
	backend nn.Backend
	// dev is the GPU placement (Config.Device, device.go); nil on the CPU.
	dev *deviceState
	// grid caches the anchors of the last batch geometry (they depend
	// only on it; every pass of a training loop reuses them read-only).
	grid anchorGrid
}

// anchorGrid is the anchors (and per-level counts) for one padded batch
// size and feature map size.
type anchorGrid struct {
	padH, padW, featH, featW int
	anchors                  []box.Box
	perLevel                 []int
}

// New validates cfg and builds a model in evaluation mode, creating the
// default part for every nil extension field (initialised from cfg.Seed).
func New(cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.ImageMean = append([]float64(nil), cfg.ImageMean...)
	cfg.ImageStd = append([]float64(nil), cfg.ImageStd...)
	cfg.Anchors = anchor.Config{
		Sizes:        append([]float64(nil), cfg.Anchors.Sizes...),
		AspectRatios: append([]float64(nil), cfg.Anchors.AspectRatios...),
	}
	rng := rand.New(rand.NewSource(cfg.Seed))
	m := &Model{cfg: cfg, rng: rng, arena: nn.NewArena()}
	var err error
	if m.transform, err = transform.New(cfg.transformConfig()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if m.anchors, err = anchor.New(cfg.Anchors); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	m.pool = roialign.NewMultiScale(cfg.RoIOutputSize, cfg.RoISamplingRatio)

	m.Backbone = cfg.Backbone
	if m.Backbone == nil {
		body, err := resnet.NewBody(resnet.BodyConfig{TrainableLayers: cfg.TrainableBackboneLayers, FrozenBN: cfg.FrozenBN}, rng)
		if err != nil {
			return nil, fmt.Errorf("%w: backbone: %w", ErrConfig, err)
		}
		m.Backbone = body
	}
	ch := m.Backbone.OutChannels()
	if ch <= 0 {
		return nil, fmt.Errorf("%w: backbone reports %d output channels", ErrConfig, ch)
	}
	m.RPNHead = cfg.RPNHead
	if m.RPNHead == nil {
		if m.RPNHead, err = rpn.NewConvHead(ch, cfg.Anchors.NumAnchorsPerLocation(), rng); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	m.BoxHead = cfg.BoxHead
	if m.BoxHead == nil {
		o := cfg.RoIOutputSize
		if m.BoxHead, err = roi.NewTwoMLPHead(ch*o*o, cfg.RepresentationSize, rng); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	m.Predictor = cfg.Predictor
	if m.Predictor == nil {
		if cfg.BoxHead != nil {
			return nil, fmt.Errorf("%w: a custom BoxHead needs a custom Predictor too (its output width is unknown before it runs)", ErrConfig)
		}
		if m.Predictor, err = roi.NewFastRCNNPredictor(cfg.RepresentationSize, cfg.NumClasses, rng); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	sd := nn.NewStateDict()
	m.Backbone.AddState(sd, prefixBackbone)
	m.RPNHead.AddState(sd, prefixRPNHead)
	m.BoxHead.AddState(sd, prefixBoxHead)
	m.Predictor.AddState(sd, prefixPredictor)
	for _, k := range sd.Keys {
		if p := sd.Param(k); p != nil {
			p.Name = k // every parameter carries its key in this model
		}
	}
	m.state = sd
	if err := m.useDevice(); err != nil {
		return nil, err
	}
	m.Eval()
	return m, nil
}

// Config returns a copy of the configuration the model was built with
// (changing it does not change the model).
func (m *Model) Config() Config {
	c := m.cfg
	c.ImageMean = append([]float64(nil), c.ImageMean...)
	c.ImageStd = append([]float64(nil), c.ImageStd...)
	c.Anchors.Sizes = append([]float64(nil), c.Anchors.Sizes...)
	c.Anchors.AspectRatios = append([]float64(nil), c.Anchors.AspectRatios...)
	return c
}

// Train puts the model in training mode: batch statistics in the
// backbone's BatchNorms and the RPN's training top-n.
func (m *Model) Train() {
	m.training = true
	m.Backbone.SetTraining(true)
}

// Eval puts the model in evaluation mode: running statistics and the
// RPN's test top-n.
func (m *Model) Eval() {
	m.training = false
	m.Backbone.SetTraining(false)
}

// Training reports whether the model is in training mode.
func (m *Model) Training() bool { return m.training }

// StateDict returns the model's live parameters and buffers under
// torchvision's keys (backbone.0.weight, ..., rpn.head.conv.0.0.weight,
// roi_heads.box_head.fc6.weight, roi_heads.box_predictor.bbox_pred.bias).
// Writing into its tensors changes the model.
func (m *Model) StateDict() *nn.StateDict { return m.state }

// Params returns the trainable parameters in state-dict order: what an
// optimiser updates.
func (m *Model) Params() []*nn.Param {
	var ps []*nn.Param
	for _, k := range m.state.Keys {
		if p := m.state.Param(k); p != nil && p.Trainable {
			ps = append(ps, p)
		}
	}
	return ps
}

// ZeroGrad clears the gradients of every parameter, on the model's device
// (nn.ZeroGradsOn: a GPU model's gradients are not migrated to the host to
// be cleared).
func (m *Model) ZeroGrad() {
	if m.allParams == nil || m.allParamsKeys != len(m.state.Keys) {
		// Built once (the state dict's parameters are fixed at New; a
		// key added since makes it rebuild).
		m.allParams = m.allParams[:0]
		for _, k := range m.state.Keys {
			if p := m.state.Param(k); p != nil {
				m.allParams = append(m.allParams, p)
			}
		}
		m.allParamsKeys = len(m.state.Keys)
	}
	nn.ZeroGradsOn(m.backend, m.allParams)
}

// Load copies a weights file into the model (weights.Load on the state
// dict): strict unless opts allow missing or unexpected keys, with nothing
// changed on error.
func (m *Model) Load(f *weights.File, opts weights.LoadOptions) (*weights.Report, error) {
	if f == nil {
		return nil, fmt.Errorf("%w: no weights file", ErrInput)
	}
	rep, err := weights.Load(m.state.Tensors, f, opts)
	m.state.MarkChanged() // cached derived weights must follow the new values
	return rep, err
}

// LoadBackbone loads ImageNet ResNet18 weights (torchvision's resnet18 keys:
// conv1, bn1, layer1..layer4; fc is dropped) into the default backbone
// through weights.ResNetBodyToFasterRCNN; the heads are left as they are.
// Every backbone tensor must be in the file (num_batches_tracked may be
// absent, as in old checkpoints); otherwise nothing is loaded.
func (m *Model) LoadBackbone(f *weights.File) (*weights.Report, error) {
	if f == nil {
		return nil, fmt.Errorf("%w: no weights file", ErrInput)
	}
	have := map[string]bool{}
	for _, n := range f.Names {
		if to, ok := weights.ResNetBodyToFasterRCNN.Apply(n); ok {
			have[to] = true
		}
	}
	var missing []string
	for _, k := range m.state.Keys {
		if strings.HasPrefix(k, prefixBackbone) && !have[k] && !strings.HasSuffix(k, "num_batches_tracked") {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %d backbone tensors missing from the file, e.g. %v", ErrInput, len(missing), missing[:min(len(missing), 5)])
	}
	rep, err := weights.Load(m.state.Tensors, f, weights.LoadOptions{Keys: weights.ResNetBodyToFasterRCNN, AllowMissing: true})
	m.state.MarkChanged() // cached derived weights must follow the new values
	return rep, err
}
