// Package roi is the box head side of Faster R-CNN (torchvision's
// models/detection/roi_heads.py): everything that happens to region
// proposals after the RPN.
//
// This package's non-differentiable half works on plain values:
//
//   - Config and Defaults: torchvision's box-head numbers (matcher 0.5/0.5,
//     512 proposals per image with a quarter positives, BoxCoder weights
//     (10,10,5,5), score threshold 0.05, NMS 0.5, 100 detections);
//   - SelectTrainingSamples: GT boxes appended to the proposals, matching,
//     labels, sampling and regression targets for training;
//   - PostprocessDetections: softmax, per-class decode, clip, score
//     threshold, small-box removal, per-class NMS and the top detections.
//
// RoIAlign, the box head, the predictor and the losses, which need
// gradients, live in other files of this package.
package roi
