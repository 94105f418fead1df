package resnet

import (
	"fmt"
	"math/rand"
	"strconv"
	"strings"

	"github.com/detlab/detlab/lib/nn"
)

// BodyConfig configures a detection body.
type BodyConfig struct {
	// TrainableLayers is torchvision's trainable_backbone_layers (0-5):
	// how many of layer4, layer3, layer2, layer1, conv1 (counted from the
	// top) keep requires_grad; at 5 bn1 trains too. DefaultBodyConfig
	// uses 5 (torchvision's value when no pretrained weights are loaded).
	TrainableLayers int
	// FrozenBN makes every BatchNorm a FrozenBatchNorm2d (torchvision's
	// choice with pretrained weights).
	FrozenBN bool
}

// DefaultBodyConfig returns every layer trainable with ordinary BatchNorm.
func DefaultBodyConfig() BodyConfig { return BodyConfig{TrainableLayers: 5} }

// Body is the ResNet18 trunk used by Faster R-CNN (torchvision's
// IntermediateLayerGetter over resnet18 up to layer4): its output is the
// stride-32, 512-channel layer4 map. Its keys are those of the detection
// model's backbone.body: 0 (conv1), 1 (bn1), 4..7 (layer1..layer4); its
// parameters are named with the "backbone." prefix.
type Body struct {
	Net *ResNet18
	cfg BodyConfig
}

// bodyNames maps torchvision's module names to the detection body's keys.
var bodyNames = map[string]string{"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}

// NewBody returns a detection body initialised from rng.
func NewBody(cfg BodyConfig, rng *rand.Rand) (*Body, error) {
	names := map[string]string{}
	for k, v := range bodyNames {
		names[k] = "backbone." + v
	}
	net, err := build(0, rng, names)
	if err != nil {
		return nil, err
	}
	// Keys (AddState) are relative to the body; parameters carry the
	// detection model's full names.
	net.names = bodyNames
	b := &Body{Net: net}
	if cfg.FrozenBN {
		net.FreezeBatchNorm()
	}
	if err := b.SetTrainableLayers(cfg.TrainableLayers); err != nil {
		return nil, err
	}
	b.cfg = cfg
	return b, nil
}

// OutChannels is the channel count of the output map (512).
func (b *Body) OutChannels() int { return 512 }

// Stride is the output map's stride in input pixels (32).
func (b *Body) Stride() int { return 32 }

// SetTrainableLayers applies torchvision's trainable_backbone_layers rule:
// parameters outside the n top-most of [layer4 layer3 layer2 layer1 conv1]
// (plus bn1 when n is 5) stop requiring gradients. Frozen BatchNorms never
// train.
func (b *Body) SetTrainableLayers(n int) error {
	if n < 0 || n > 5 {
		return fmt.Errorf("resnet: trainable layers must be in [0, 5], got %d", n)
	}
	b.cfg.TrainableLayers = n
	train := map[string]bool{}
	for _, l := range []string{"layer4", "layer3", "layer2", "layer1", "conv1"}[:n] {
		train[l] = true
	}
	if n == 5 {
		train["bn1"] = true
	}
	set := func(ps []*nn.Param, on bool) {
		for _, p := range ps {
			p.Trainable = on
		}
	}
	m := b.Net
	set(m.Conv1.Params(), train["conv1"])
	set([]*nn.Param{m.BN1.Weight, m.BN1.Bias}, train["bn1"] && m.BN1.Mode != nn.BNFrozen)
	for s, l := range m.Layers {
		for _, blk := range l {
			set(blk.Params(), train[fmt.Sprintf("layer%d", s+1)])
		}
	}
	return nil
}

// TrainableLayers returns the current trainable_backbone_layers value.
func (b *Body) TrainableLayers() int { return b.cfg.TrainableLayers }

// SetTraining switches the BatchNorms between batch and running statistics
// (frozen ones stay frozen).
func (b *Body) SetTraining(train bool) { b.Net.SetTraining(train) }

// Forward returns the layer4 map (N, 512, ceil-ish H/32, W/32).
func (b *Body) Forward(g *nn.Graph, x *nn.Var) (*nn.Var, error) {
	f, err := b.Net.Features(g, x, 4)
	if err != nil {
		return nil, err
	}
	return f.Layer4, nil
}

// Features returns the stem and the stages up to upTo (1..4).
func (b *Body) Features(g *nn.Graph, x *nn.Var, upTo int) (*Features, error) {
	return b.Net.Features(g, x, upTo)
}

// OutputShape returns the shape of the output map for an input shape.
func (b *Body) OutputShape(in []int) ([]int, error) { return b.Net.FeatureShape(in, 4) }

// Params returns the parameters (trainable or not) in state-dict order.
func (b *Body) Params() []*nn.Param { return b.Net.Params() }

// AddState adds the body's tensors with keys "0.weight", "1.running_mean",
// "4.0.conv1.weight", ... under prefix; the detection model passes
// "backbone.".
func (b *Body) AddState(sd *nn.StateDict, prefix string) { b.Net.AddState(sd, prefix) }

// StateDict returns the body's tensors under the detection model's keys
// (backbone.0.weight, ..., backbone.7.1.bn2.running_var).
func (b *Body) StateDict() *nn.StateDict { return nn.State(b, "backbone.") }

// BodyKey maps a torchvision resnet18 key to the detection body's key under
// prefix ("conv1.weight" -> prefix+"0.weight", "layer3.1.bn2.bias" ->
// prefix+"6.1.bn2.bias"). It reports false for keys the body does not have
// (fc.*), so ImageNet weights load into a detection model with it.
func BodyKey(key, prefix string) (string, bool) {
	head, rest, ok := strings.Cut(key, ".")
	if !ok {
		return "", false
	}
	idx, ok := bodyNames[head]
	if !ok {
		return "", false
	}
	return prefix + idx + "." + rest, true
}

// ResNetKey is BodyKey's inverse: it maps a body key (after prefix) back to
// torchvision's resnet18 key.
func ResNetKey(key, prefix string) (string, bool) {
	key, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return "", false
	}
	head, rest, ok := strings.Cut(key, ".")
	if !ok {
		return "", false
	}
	if _, err := strconv.Atoi(head); err != nil {
		return "", false
	}
	for name, idx := range bodyNames {
		if idx == head {
			return name + "." + rest, true
		}
	}
	return "", false
}
