// Package resnet builds torchvision's ResNet18 on lib/nn: the ImageNet
// classifier (keys conv1, bn1, layer1.0.conv1, layer2.0.downsample.0, fc,
// ...) and the detection body Faster R-CNN uses, which returns the
// stride-32, 512-channel feature map under the keys backbone.0 (conv1),
// backbone.1 (bn1) and backbone.4 to backbone.7 (layer1 to layer4).
//
// Parameters are initialised as torchvision does (kaiming_normal_ fan_out
// for convolutions, BatchNorm weight 1 and bias 0, Linear's default for fc),
// deterministically from the *rand.Rand given.
package resnet

import (
	"errors"
	"fmt"
	"math/rand"

	"github.com/detlab/detlab/lib/nn"
)

// ErrInput reports an input the network cannot take (wrong rank or
// channel count, an empty image).
var ErrInput = errors.New("resnet: bad input")

// BasicBlock is torchvision's BasicBlock: conv3x3-BN-ReLU-conv3x3-BN, plus
// the identity (or a 1x1 conv + BN downsample), then ReLU.
type BasicBlock struct {
	Conv1 *nn.Conv2d
	BN1   *nn.BatchNorm2d
	Conv2 *nn.Conv2d
	BN2   *nn.BatchNorm2d
	// DownConv and DownBN form downsample.0 and downsample.1; nil when the
	// block keeps its input's shape.
	DownConv *nn.Conv2d
	DownBN   *nn.BatchNorm2d
}

func newBlock(name string, in, out, stride int, rng *rand.Rand) (*BasicBlock, error) {
	b := &BasicBlock{}
	var err error
	mk := func(n string, ci, co, k, s, p int) *nn.Conv2d {
		if err != nil {
			return nil
		}
		var c *nn.Conv2d
		c, err = nn.NewConv2d(n, ci, co, k, s, p, false, rng)
		if err == nil {
			// ResNet re-initialises convolutions: kaiming_normal_(fan_out, relu).
			nn.KaimingNormal(c.Weight.Value, co*k*k, rng)
		}
		return c
	}
	bn := func(n string, c int) *nn.BatchNorm2d {
		if err != nil {
			return nil
		}
		var m *nn.BatchNorm2d
		m, err = nn.NewBatchNorm2d(n, c)
		return m
	}
	b.Conv1 = mk(name+".conv1", in, out, 3, stride, 1)
	b.BN1 = bn(name+".bn1", out)
	b.Conv2 = mk(name+".conv2", out, out, 3, 1, 1)
	b.BN2 = bn(name+".bn2", out)
	if stride != 1 || in != out {
		b.DownConv = mk(name+".downsample.0", in, out, 1, stride, 0)
		b.DownBN = bn(name+".downsample.1", out)
	}
	return b, err
}

// Forward runs the block. Each convolution and its BatchNorm (and the
// ReLUs and the residual sum) run as one nn.ConvBN: a single fused pass when
// the BatchNorms are fixed affine maps for this graph (eval on an inference
// graph, or frozen), the separate layers otherwise.
func (b *BasicBlock) Forward(g *nn.Graph, x *nn.Var) (*nn.Var, error) {
	h, err := nn.ConvBN(g, b.Conv1, b.BN1, x, nil, true)
	if err != nil {
		return nil, err
	}
	id := x
	if b.DownConv != nil {
		if id, err = nn.ConvBN(g, b.DownConv, b.DownBN, x, nil, false); err != nil {
			return nil, err
		}
	}
	return nn.ConvBN(g, b.Conv2, b.BN2, h, id, true)
}

// OutputShape returns the block's output shape for an NCHW input shape.
func (b *BasicBlock) OutputShape(in []int) ([]int, error) {
	s, err := b.Conv1.OutputShape(in)
	if err != nil {
		return nil, err
	}
	return b.Conv2.OutputShape(s)
}

func (b *BasicBlock) bns() []*nn.BatchNorm2d {
	if b.DownBN != nil {
		return []*nn.BatchNorm2d{b.BN1, b.BN2, b.DownBN}
	}
	return []*nn.BatchNorm2d{b.BN1, b.BN2}
}

// Params returns the block's parameters in state-dict order.
func (b *BasicBlock) Params() []*nn.Param {
	ps := append(b.Conv1.Params(), b.BN1.Params()...)
	ps = append(ps, b.Conv2.Params()...)
	ps = append(ps, b.BN2.Params()...)
	if b.DownConv != nil {
		ps = append(ps, b.DownConv.Params()...)
		ps = append(ps, b.DownBN.Params()...)
	}
	return ps
}

// AddState adds the block's tensors under prefix ("layer2.0.").
func (b *BasicBlock) AddState(sd *nn.StateDict, prefix string) {
	b.Conv1.AddState(sd, prefix+"conv1.")
	b.BN1.AddState(sd, prefix+"bn1.")
	b.Conv2.AddState(sd, prefix+"conv2.")
	b.BN2.AddState(sd, prefix+"bn2.")
	if b.DownConv != nil {
		b.DownConv.AddState(sd, prefix+"downsample.0.")
		b.DownBN.AddState(sd, prefix+"downsample.1.")
	}
}

// Features holds the intermediate maps of one forward pass.
type Features struct {
	Stem                           *nn.Var // after maxpool, stride 4, 64 channels
	Layer1, Layer2, Layer3, Layer4 *nn.Var // strides 4, 8, 16, 32
}

// ResNet18 is torchvision.models.resnet18.
type ResNet18 struct {
	Conv1  *nn.Conv2d
	BN1    *nn.BatchNorm2d
	Layers [4][]*BasicBlock // layer1..layer4, two blocks each
	// FC is the classifier; nil in a detection body.
	FC *nn.Linear
	// names maps torchvision's top-level module names (conv1, bn1,
	// layer1..4, fc) to the keys this model uses.
	names map[string]string
}

// channels of layer1..layer4 and their strides.
var (
	stageChannels = [4]int{64, 128, 256, 512}
	stageStrides  = [4]int{1, 2, 2, 2}
)

// New18 returns a ResNet18 classifier with numClasses outputs, in eval
// mode, initialised from rng.
func New18(numClasses int, rng *rand.Rand) (*ResNet18, error) {
	if numClasses <= 0 {
		return nil, fmt.Errorf("resnet: %d classes", numClasses)
	}
	return build(numClasses, rng, map[string]string{
		"conv1": "conv1", "bn1": "bn1", "layer1": "layer1", "layer2": "layer2",
		"layer3": "layer3", "layer4": "layer4", "fc": "fc"})
}

func build(numClasses int, rng *rand.Rand, names map[string]string) (*ResNet18, error) {
	if rng == nil {
		return nil, fmt.Errorf("resnet: nil random source")
	}
	m := &ResNet18{names: names}
	var err error
	if m.Conv1, err = nn.NewConv2d(names["conv1"], 3, 64, 7, 2, 3, false, rng); err != nil {
		return nil, fmt.Errorf("resnet: %w", err)
	}
	nn.KaimingNormal(m.Conv1.Weight.Value, 64*7*7, rng)
	if m.BN1, err = nn.NewBatchNorm2d(names["bn1"], 64); err != nil {
		return nil, fmt.Errorf("resnet: %w", err)
	}
	in := 64
	for s := range 4 {
		out := stageChannels[s]
		for i := range 2 {
			stride := 1
			if i == 0 {
				stride = stageStrides[s]
			}
			b, err := newBlock(fmt.Sprintf("%s.%d", names[fmt.Sprintf("layer%d", s+1)], i), in, out, stride, rng)
			if err != nil {
				return nil, fmt.Errorf("resnet: %w", err)
			}
			m.Layers[s] = append(m.Layers[s], b)
			in = out
		}
	}
	if numClasses > 0 {
		if m.FC, err = nn.NewLinear(names["fc"], 512, numClasses, true, rng); err != nil {
			return nil, fmt.Errorf("resnet: %w", err)
		}
	}
	return m, nil
}

// BatchNorms returns every BatchNorm of the network in state-dict order.
func (m *ResNet18) BatchNorms() []*nn.BatchNorm2d {
	bns := []*nn.BatchNorm2d{m.BN1}
	for _, l := range m.Layers {
		for _, b := range l {
			bns = append(bns, b.bns()...)
		}
	}
	return bns
}

// SetTraining switches every BatchNorm to batch statistics (true) or
// running statistics (false); frozen BatchNorms stay frozen.
func (m *ResNet18) SetTraining(train bool) {
	mode := nn.BNEval
	if train {
		mode = nn.BNTrain
	}
	for _, bn := range m.BatchNorms() {
		bn.SetMode(mode)
	}
}

// FreezeBatchNorm turns every BatchNorm into a FrozenBatchNorm2d.
func (m *ResNet18) FreezeBatchNorm() {
	for _, bn := range m.BatchNorms() {
		bn.SetMode(nn.BNFrozen)
	}
}

func checkInput(in []int) error {
	if len(in) != 4 {
		return fmt.Errorf("%w: want an NCHW batch, got shape %v", ErrInput, in)
	}
	if in[1] != 3 {
		return fmt.Errorf("%w: want 3 (RGB) channels, got %d (shape %v)", ErrInput, in[1], in)
	}
	if in[0] == 0 || in[2] == 0 || in[3] == 0 {
		return fmt.Errorf("%w: empty batch or image, shape %v", ErrInput, in)
	}
	return nil
}

// Features runs the stem and the four stages on x (N,3,H,W), up to and
// including stage upTo (1..4; anything else means 4), and returns the maps.
func (m *ResNet18) Features(g *nn.Graph, x *nn.Var, upTo int) (*Features, error) {
	if err := checkInput(x.Shape()); err != nil {
		return nil, err
	}
	if upTo < 1 || upTo > 4 {
		upTo = 4
	}
	h, err := nn.ConvBN(g, m.Conv1, m.BN1, x, nil, true)
	if err != nil {
		return nil, fmt.Errorf("resnet: %w", err)
	}
	if h, err = (nn.MaxPool2d{Kernel: 3, Stride: 2, Padding: 1}).Forward(g, h); err != nil {
		return nil, fmt.Errorf("resnet: %w", err)
	}
	f := &Features{Stem: h}
	outs := [4]**nn.Var{&f.Layer1, &f.Layer2, &f.Layer3, &f.Layer4}
	for s := 0; s < upTo; s++ {
		for _, b := range m.Layers[s] {
			if h, err = b.Forward(g, h); err != nil {
				return nil, fmt.Errorf("resnet: %w", err)
			}
		}
		*outs[s] = h
	}
	return f, nil
}

// Head runs avgpool, flatten and fc on a layer4 map: the logits.
func (m *ResNet18) Head(g *nn.Graph, layer4 *nn.Var) (pooled, logits *nn.Var, err error) {
	if m.FC == nil {
		return nil, nil, fmt.Errorf("resnet: this network has no classifier (detection body)")
	}
	p, err := nn.AdaptiveAvgPool2d1{}.Forward(g, layer4)
	if err != nil {
		return nil, nil, fmt.Errorf("resnet: %w", err)
	}
	if pooled, err = (nn.Flatten{}).Forward(g, p); err != nil {
		return nil, nil, fmt.Errorf("resnet: %w", err)
	}
	if logits, err = m.FC.Forward(g, pooled); err != nil {
		return nil, nil, fmt.Errorf("resnet: %w", err)
	}
	return pooled, logits, nil
}

// Forward returns the logits (N, numClasses) for x (N,3,H,W).
func (m *ResNet18) Forward(g *nn.Graph, x *nn.Var) (*nn.Var, error) {
	f, err := m.Features(g, x, 4)
	if err != nil {
		return nil, err
	}
	_, logits, err := m.Head(g, f.Layer4)
	return logits, err
}

// FeatureShape returns the shape of stage s (0 stem, 1..4 layers) for an
// input shape, without running anything.
func (m *ResNet18) FeatureShape(in []int, stage int) ([]int, error) {
	if err := checkInput(in); err != nil {
		return nil, err
	}
	if stage < 0 || stage > 4 {
		return nil, fmt.Errorf("resnet: no stage %d (0 stem, 1..4 layers)", stage)
	}
	s, err := m.Conv1.OutputShape(in)
	if err != nil {
		return nil, fmt.Errorf("resnet: %w", err)
	}
	if s, err = (nn.MaxPool2d{Kernel: 3, Stride: 2, Padding: 1}).OutputShape(s); err != nil {
		return nil, fmt.Errorf("resnet: %w", err)
	}
	for i := 0; i < stage; i++ {
		for _, b := range m.Layers[i] {
			if s, err = b.OutputShape(s); err != nil {
				return nil, fmt.Errorf("resnet: %w", err)
			}
		}
	}
	return s, nil
}

// OutputShape returns the logits' shape (N, numClasses) for an input shape.
func (m *ResNet18) OutputShape(in []int) ([]int, error) {
	if m.FC == nil {
		return m.FeatureShape(in, 4)
	}
	if _, err := m.FeatureShape(in, 4); err != nil {
		return nil, err
	}
	return []int{in[0], m.FC.Out}, nil
}

// Params returns every parameter in state-dict order (frozen BatchNorms
// contribute none).
func (m *ResNet18) Params() []*nn.Param {
	ps := append(m.Conv1.Params(), m.BN1.Params()...)
	for _, l := range m.Layers {
		for _, b := range l {
			ps = append(ps, b.Params()...)
		}
	}
	if m.FC != nil {
		ps = append(ps, m.FC.Params()...)
	}
	return ps
}

// AddState adds every parameter and buffer under prefix with this model's
// key names.
func (m *ResNet18) AddState(sd *nn.StateDict, prefix string) {
	m.Conv1.AddState(sd, prefix+m.names["conv1"]+".")
	m.BN1.AddState(sd, prefix+m.names["bn1"]+".")
	for s, l := range m.Layers {
		for i, b := range l {
			b.AddState(sd, fmt.Sprintf("%s%s.%d.", prefix, m.names[fmt.Sprintf("layer%d", s+1)], i))
		}
	}
	if m.FC != nil {
		m.FC.AddState(sd, prefix+m.names["fc"]+".")
	}
}

// StateDict returns the model's live tensors under torchvision's keys.
func (m *ResNet18) StateDict() *nn.StateDict { return nn.State(m, "") }
