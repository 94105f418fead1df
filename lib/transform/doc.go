// Package transform prepares images for detection the way torchvision's
// GeneralizedRCNNTransform does in evaluation (and training) mode: normalise
// with a per-channel mean and std, resize so the shorter side reaches
// MinSize unless the longer side would pass MaxSize, pad the batch with zeros
// at the bottom and right to a multiple of 32, and map detections back to
// the original pixels afterwards.
//
//	t, _ := transform.New(transform.Defaults())      // 800/1333, ImageNet mean/std
//	t.Config.MinSize, t.Config.MaxSize = []int{320}, 480
//	batch, boxes, err := t.Apply(images, targets)     // (C,H,W) in [0,1], (K,4) boxes
//	// ... run the model on batch.Tensor, get boxes in resized pixels ...
//	orig, err := batch.Postprocess(detections)
//
// In a training loop, ApplyWith(arena, ...) takes the working memory and
// the batch from an nn.Arena (any Buffers) instead of the heap.
//
// The arithmetic follows torch number for number where it matters: the scale
// is a float32 reciprocal times the size (Scale), the output size a float64
// floor (ResizedSize), the bilinear weights those of upsample_bilinear2d with
// align_corners=False and the kernel scale recomputed as in/out
// (ResizeBilinear), and boxes are rescaled by per-axis float32 size ratios,
// not by the scale factor (ResizeBoxes).
package transform
