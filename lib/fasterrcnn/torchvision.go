package fasterrcnn

import (
	"encoding/json"
	"fmt"
)

// TorchvisionArgs are the keyword arguments of torchvision's
// models.detection.FasterRCNN that have a Config field, under their Python
// names, so a notebook can start from the arguments a torchvision script
// uses (json.Unmarshal of a dict dumped with json.dumps) and the golden
// files' "config" metadata can be read back (start from
// DefaultTorchvisionArgs: absent arguments keep torchvision's defaults).
type TorchvisionArgs struct {
	NumClasses          int         `json:"num_classes"`
	MinSize             int         `json:"min_size"`
	MaxSize             int         `json:"max_size"`
	SizeDivisible       int         `json:"size_divisible"`
	ImageMean           []float64   `json:"image_mean"`
	ImageStd            []float64   `json:"image_std"`
	AnchorSizes         [][]float64 `json:"anchor_sizes"`
	AspectRatios        [][]float64 `json:"aspect_ratios"`
	RoIOutputSize       int         `json:"roi_output_size"`
	RoISamplingRatio    int         `json:"roi_sampling_ratio"`
	RepresentationSize  int         `json:"representation_size"`
	RPNPreNMSTopNTrain  int         `json:"rpn_pre_nms_top_n_train"`
	RPNPreNMSTopNTest   int         `json:"rpn_pre_nms_top_n_test"`
	RPNPostNMSTopNTrain int         `json:"rpn_post_nms_top_n_train"`
	RPNPostNMSTopNTest  int         `json:"rpn_post_nms_top_n_test"`
	RPNNMSThresh        float64     `json:"rpn_nms_thresh"`
	RPNFGIoUThresh      float64     `json:"rpn_fg_iou_thresh"`
	RPNBGIoUThresh      float64     `json:"rpn_bg_iou_thresh"`
	RPNBatchSize        int         `json:"rpn_batch_size_per_image"`
	RPNPositiveFrac     float64     `json:"rpn_positive_fraction"`
	RPNScoreThresh      float64     `json:"rpn_score_thresh"`
	BoxScoreThresh      float64     `json:"box_score_thresh"`
	BoxNMSThresh        float64     `json:"box_nms_thresh"`
	BoxDetectionsPer    int         `json:"box_detections_per_img"`
	BoxFGIoUThresh      float64     `json:"box_fg_iou_thresh"`
	BoxBGIoUThresh      float64     `json:"box_bg_iou_thresh"`
	BoxBatchSize        int         `json:"box_batch_size_per_image"`
	BoxPositiveFrac     float64     `json:"box_positive_fraction"`
	BBoxRegWeights      []float64   `json:"bbox_reg_weights"`
}

// DefaultTorchvisionArgs returns the arguments of Defaults (NumClasses 0:
// set it): decoding JSON into them changes only the arguments it names,
// as Python keyword arguments do.
func DefaultTorchvisionArgs() TorchvisionArgs {
	c := Defaults(0)
	return TorchvisionArgs{
		MinSize: c.MinSize, MaxSize: c.MaxSize, SizeDivisible: c.SizeDivisible,
		ImageMean: append([]float64(nil), c.ImageMean...), ImageStd: append([]float64(nil), c.ImageStd...),
		AnchorSizes:   [][]float64{append([]float64(nil), c.Anchors.Sizes...)},
		AspectRatios:  [][]float64{append([]float64(nil), c.Anchors.AspectRatios...)},
		RoIOutputSize: c.RoIOutputSize, RoISamplingRatio: c.RoISamplingRatio, RepresentationSize: c.RepresentationSize,
		RPNPreNMSTopNTrain: c.RPN.PreNMSTopNTrain, RPNPreNMSTopNTest: c.RPN.PreNMSTopNTest,
		RPNPostNMSTopNTrain: c.RPN.PostNMSTopNTrain, RPNPostNMSTopNTest: c.RPN.PostNMSTopNTest,
		RPNNMSThresh: c.RPN.NMSThresh, RPNFGIoUThresh: c.RPN.FGIoUThresh, RPNBGIoUThresh: c.RPN.BGIoUThresh,
		RPNBatchSize: c.RPN.BatchSizePerImage, RPNPositiveFrac: c.RPN.PositiveFraction, RPNScoreThresh: c.RPN.ScoreThresh,
		BoxScoreThresh: c.RoI.ScoreThresh, BoxNMSThresh: c.RoI.NMSThresh, BoxDetectionsPer: c.RoI.DetectionsPerImg,
		BoxFGIoUThresh: c.RoI.FGIoUThresh, BoxBGIoUThresh: c.RoI.BGIoUThresh,
		BoxBatchSize: c.RoI.BatchSizePerImage, BoxPositiveFrac: c.RoI.PositiveFraction,
		BBoxRegWeights: append([]float64(nil), c.RoI.BBoxRegWeights[:]...),
	}
}

// ParseTorchvisionArgs decodes FasterRCNN keyword arguments from a JSON
// object; arguments it does not name keep DefaultTorchvisionArgs' values.
func ParseTorchvisionArgs(data []byte) (TorchvisionArgs, error) {
	a := DefaultTorchvisionArgs()
	if err := json.Unmarshal(data, &a); err != nil {
		return a, fmt.Errorf("fasterrcnn: torchvision arguments: %w", err)
	}
	return a, nil
}

// Config returns the Config with a's arguments (Defaults for the fields
// TorchvisionArgs does not cover), validated. A nil slice is Python's None:
// torchvision's default. The ResNet18 body has one feature map, so anchors,
// when given, must have exactly one level: sizes and ratios as one tuple
// each.
func (a TorchvisionArgs) Config() (Config, error) {
	c := Defaults(a.NumClasses)
	// null (Python's None) keeps torchvision's default, as FasterRCNN does.
	if a.AnchorSizes != nil || a.AspectRatios != nil {
		if len(a.AnchorSizes) != 1 || len(a.AspectRatios) != 1 {
			return c, fmt.Errorf("%w: anchor_sizes has %d levels and aspect_ratios %d; the ResNet18 body has one feature map", ErrConfig, len(a.AnchorSizes), len(a.AspectRatios))
		}
		c.Anchors.Sizes = append([]float64(nil), a.AnchorSizes[0]...)
		c.Anchors.AspectRatios = append([]float64(nil), a.AspectRatios[0]...)
	}
	if a.BBoxRegWeights != nil {
		if len(a.BBoxRegWeights) != len(c.RoI.BBoxRegWeights) {
			return c, fmt.Errorf("%w: bbox_reg_weights has %d values, want %d", ErrConfig, len(a.BBoxRegWeights), len(c.RoI.BBoxRegWeights))
		}
		copy(c.RoI.BBoxRegWeights[:], a.BBoxRegWeights)
	}
	if a.ImageMean != nil {
		c.ImageMean = append([]float64(nil), a.ImageMean...)
	}
	if a.ImageStd != nil {
		c.ImageStd = append([]float64(nil), a.ImageStd...)
	}
	c.MinSize, c.MaxSize, c.SizeDivisible = a.MinSize, a.MaxSize, a.SizeDivisible
	c.RoIOutputSize, c.RoISamplingRatio, c.RepresentationSize = a.RoIOutputSize, a.RoISamplingRatio, a.RepresentationSize
	c.RPN.PreNMSTopNTrain, c.RPN.PreNMSTopNTest = a.RPNPreNMSTopNTrain, a.RPNPreNMSTopNTest
	c.RPN.PostNMSTopNTrain, c.RPN.PostNMSTopNTest = a.RPNPostNMSTopNTrain, a.RPNPostNMSTopNTest
	c.RPN.NMSThresh, c.RPN.FGIoUThresh, c.RPN.BGIoUThresh = a.RPNNMSThresh, a.RPNFGIoUThresh, a.RPNBGIoUThresh
	c.RPN.BatchSizePerImage, c.RPN.PositiveFraction, c.RPN.ScoreThresh = a.RPNBatchSize, a.RPNPositiveFrac, a.RPNScoreThresh
	c.RoI.ScoreThresh, c.RoI.NMSThresh, c.RoI.DetectionsPerImg = a.BoxScoreThresh, a.BoxNMSThresh, a.BoxDetectionsPer
	c.RoI.FGIoUThresh, c.RoI.BGIoUThresh = a.BoxFGIoUThresh, a.BoxBGIoUThresh
	c.RoI.BatchSizePerImage, c.RoI.PositiveFraction = a.BoxBatchSize, a.BoxPositiveFrac
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}
