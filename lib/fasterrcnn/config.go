package fasterrcnn

import (
	"errors"
	"fmt"
	"math"

	"github.com/detlab/detlab/lib/anchor"
	"github.com/detlab/detlab/lib/nn"
	"github.com/detlab/detlab/lib/roi"
	"github.com/detlab/detlab/lib/rpn"
	"github.com/detlab/detlab/lib/transform"
)

// ErrConfig reports a configuration New cannot build a model from.
var ErrConfig = errors.New("fasterrcnn: invalid configuration")

// ErrInput reports images or targets the model cannot take: wrong shapes,
// zero-size images, NaN values, bad boxes or labels.
var ErrInput = errors.New("fasterrcnn: invalid input")

// Backbone computes the feature map the detector works on: images (N, 3, H,
// W), normalised and padded by the transform, to one (N, OutChannels, Hf,
// Wf) map. The default is the ResNet18 body of lib/resnet (stride 32, 512
// channels), torchvision's resnet18 children[:-2].
//
// SetTraining switches BatchNorm-like layers between batch and running
// statistics; Params lists the parameters (the model keeps those whose
// Trainable is set); AddState adds parameters and buffers under prefix (the
// model passes "backbone.").
type Backbone interface {
	Forward(g *nn.Graph, images *nn.Var) (*nn.Var, error)
	OutChannels() int
	SetTraining(train bool)
	Params() []*nn.Param
	AddState(sd *nn.StateDict, prefix string)
}

// Config holds every number of torchvision's FasterRCNN constructor, and the
// parts that can be replaced. Defaults fills it with torchvision's values.
type Config struct {
	// NumClasses counts the classes including the background (class 0):
	// a dataset with 4 object classes has NumClasses 5.
	NumClasses int

	// MinSize is the length the shorter image side is resized to (800),
	// unless the longer side would then exceed MaxSize (1333).
	MinSize, MaxSize int
	// ImageMean and ImageStd normalise each RGB channel: (x - mean)/std
	// (ImageNet's values).
	ImageMean, ImageStd []float64
	// SizeDivisible pads the batch height and width to a multiple of it
	// (32).
	SizeDivisible int

	// Anchors are the anchor sizes (square roots of areas, in pixels of the
	// resized image) and aspect ratios (height/width) generated at every
	// feature-map location: (32, 64, 128, 256, 512) x (0.5, 1, 2), 15 per
	// location, as the ResNet18 article uses with a single feature map.
	Anchors anchor.Config

	// RPN holds the region proposal numbers: pre/post-NMS top-n for
	// training (2000/2000) and testing (1000/1000), NMS 0.7, matcher
	// 0.7/0.3, 256 sampled anchors per image with at most half positive.
	RPN rpn.Config
	// RoI holds the box head numbers: matcher 0.5/0.5, 512 sampled
	// proposals per image with at most a quarter positive, box coder
	// weights (10, 10, 5, 5), score threshold 0.05, NMS 0.5, 100
	// detections per image.
	RoI roi.Config

	// RoIOutputSize is RoIAlign's output size (7x7) and RoISamplingRatio
	// its sampling points per bin and axis (2).
	RoIOutputSize, RoISamplingRatio int
	// RepresentationSize is the width of the default box head's fc6 and fc7
	// (1024).
	RepresentationSize int

	// TrainableBackboneLayers is torchvision's trainable_backbone_layers
	// for the default backbone: how many of layer4, layer3, layer2, layer1
	// and conv1 (from the top) train (5: all, torchvision's value without
	// pretrained weights; 3 is its choice with them).
	TrainableBackboneLayers int
	// FrozenBN makes the default backbone's BatchNorms FrozenBatchNorm2d
	// (torchvision's choice with pretrained weights). False: ordinary
	// BatchNorm, batch statistics in training mode.
	FrozenBN bool

	// Backbone replaces the ResNet18 body; nil builds the default from
	// TrainableBackboneLayers and FrozenBN.
	Backbone Backbone
	// RPNHead replaces torchvision's RPNHead (3x3 conv, ReLU, 1x1
	// cls_logits and bbox_pred); nil builds it.
	RPNHead rpn.Head
	// BoxHead replaces the TwoMLPHead (fc6, fc7 of RepresentationSize);
	// nil builds it.
	BoxHead roi.BoxHead
	// Predictor replaces the FastRCNNPredictor (cls_score, bbox_pred);
	// nil builds it. A custom Predictor must output NumClasses logits and
	// 4*NumClasses deltas.
	Predictor roi.Predictor

	// Seed initialises the default parts and drives the training samplers.
	Seed int64

	// Device is where the model runs: "" or "cpu" for the CPU backend,
	// "cuda" or "cuda:N" for GPU N through lib/cuda (found at run time; New
	// fails naming what is missing when there is none). The same code and
	// numbers run on either; see Model.Device and Model.DeviceMemory.
	Device string
}

// Defaults returns torchvision 0.14's FasterRCNN defaults for numClasses
// classes (background included), with the single-level anchors of a
// ResNet18 body without FPN.
func Defaults(numClasses int) Config {
	return Config{
		NumClasses:              numClasses,
		MinSize:                 800,
		MaxSize:                 1333,
		ImageMean:               append([]float64(nil), transform.ImageNetMean...),
		ImageStd:                append([]float64(nil), transform.ImageNetStd...),
		SizeDivisible:           32,
		Anchors:                 anchor.Defaults(),
		RPN:                     rpn.Defaults(),
		RoI:                     roi.Defaults(),
		RoIOutputSize:           7,
		RoISamplingRatio:        2,
		RepresentationSize:      roi.DefaultRepresentationSize,
		TrainableBackboneLayers: 5,
	}
}

// Validate reports a configuration New cannot build, naming the field.
func (c Config) Validate() error {
	if c.NumClasses < 2 {
		return fmt.Errorf("%w: NumClasses %d must be at least 2 (the background counts as class 0)", ErrConfig, c.NumClasses)
	}
	if err := c.transformConfig().Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if len(c.ImageMean) != 3 {
		return fmt.Errorf("%w: ImageMean and ImageStd need 3 values (RGB), got %d", ErrConfig, len(c.ImageMean))
	}
	if len(c.Anchors.Sizes) == 0 || len(c.Anchors.AspectRatios) == 0 {
		return fmt.Errorf("%w: Anchors needs at least one size and one aspect ratio", ErrConfig)
	}
	for _, v := range append(append([]float64(nil), c.Anchors.Sizes...), c.Anchors.AspectRatios...) {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: anchor sizes %v and aspect ratios %v must be positive", ErrConfig, c.Anchors.Sizes, c.Anchors.AspectRatios)
		}
	}
	if err := c.RPN.Validate(); err != nil {
		return fmt.Errorf("%w: RPN: %w", ErrConfig, err)
	}
	if err := c.RoI.Validate(); err != nil {
		return fmt.Errorf("%w: RoI: %w", ErrConfig, err)
	}
	if c.RoIOutputSize <= 0 {
		return fmt.Errorf("%w: RoIOutputSize %d must be positive", ErrConfig, c.RoIOutputSize)
	}
	if c.RoISamplingRatio < 0 {
		return fmt.Errorf("%w: RoISamplingRatio %d must not be negative (0 is adaptive)", ErrConfig, c.RoISamplingRatio)
	}
	if c.BoxHead == nil && c.RepresentationSize <= 0 {
		return fmt.Errorf("%w: RepresentationSize %d must be positive", ErrConfig, c.RepresentationSize)
	}
	if err := validateDevice(c.Device); err != nil {
		return err
	}
	if c.Backbone == nil && (c.TrainableBackboneLayers < 0 || c.TrainableBackboneLayers > 5) {
		return fmt.Errorf("%w: TrainableBackboneLayers %d must be in [0, 5]", ErrConfig, c.TrainableBackboneLayers)
	}
	return nil
}

func (c Config) transformConfig() transform.Config {
	return transform.Config{
		MinSize:       []int{c.MinSize},
		MaxSize:       c.MaxSize,
		Mean:          append([]float64(nil), c.ImageMean...),
		Std:           append([]float64(nil), c.ImageStd...),
		SizeDivisible: c.SizeDivisible,
	}
}
