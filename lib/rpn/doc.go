// Package rpn is the region proposal network of Faster R-CNN, as
// torchvision's models/detection/rpn.py.
//
// This package's non-differentiable half works on plain values:
//
//   - Config and Defaults: torchvision's RPN numbers (pre/post-NMS top-n for
//     training and testing, NMS 0.7, matcher 0.7/0.3, 256 anchors per image
//     with half positives);
//   - FlattenPredictions: the head's (N,A,H,W) objectness and (N,4A,H,W)
//     deltas reordered to the anchors' (N,H,W,A) order;
//   - FilterProposals: per-level top-n on the raw logits, decode with
//     BoxCoder (1,1,1,1), sigmoid, clip, small-box removal, score threshold,
//     NMS per level, post-NMS top-n;
//   - AssignTargets and SampleAnchors: anchor labels (1, 0, -1), regression
//     targets and the anchors the losses use.
//
// The head and the losses, which need gradients, live in other files of
// this package.
package rpn
