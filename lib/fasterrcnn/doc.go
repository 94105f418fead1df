// Package fasterrcnn assembles torchvision's Faster R-CNN (0.14) from
// detlab's parts: the transform (lib/transform), a backbone (the ResNet18
// body of lib/resnet by default), the region proposal network (lib/rpn),
// RoIAlign (lib/roialign) and the box head (lib/roi). It plays the part of
// torchvision's generalized_rcnn.py and faster_rcnn.py.
//
// A model is configured by a plain struct holding every torchvision number,
// one documented field each; change one thing and build:
//
//	cfg := fasterrcnn.Defaults(numClasses) // background included
//	cfg.MinSize, cfg.MaxSize = 320, 480
//	cfg.RPN.NMSThresh = 0.6
//	cfg.BoxHead = myHead                   // nil keeps the two-layer MLP head
//	model, err := fasterrcnn.New(cfg)
//
// The parts a notebook may replace are interfaces: Backbone (declared
// here), rpn.Head, roi.BoxHead and roi.Predictor; a nil field means
// torchvision's default part. The model's state dict uses torchvision's
// keys (backbone.0.weight, rpn.head.conv.0.0.weight,
// roi_heads.box_head.fc6.weight, roi_heads.box_predictor.cls_score.weight,
// ...), so weights saved by torchvision load with lib/weights.
//
// Training: Train, then Losses returns the four losses (loss_objectness,
// loss_rpn_box_reg, loss_classifier, loss_box_reg) and their sum as graph
// values; Losses.Backward fills the parameters' gradients. Inference:
// Predict (an image.Image) or PredictTensors ((3,H,W) tensors in [0,1])
// return detections in original image coordinates. Slow calls take a
// context.Context first and check it between stages.
package fasterrcnn
