// Package box holds the box geometry and selection logic of Faster R-CNN as
// torchvision 0.14 defines it (torchvision/ops/boxes.py and
// torchvision/models/detection/_utils.py), in plain float32 Go:
//
//   - Box, an axis-aligned (x1, y1, x2, y2) rectangle in continuous pixel
//     coordinates, with no +1 in widths, heights or areas;
//   - IoU, the pairwise intersection-over-union matrix;
//   - NMS and BatchedNMS (including torchvision's coordinate-offset path and
//     its per-class path, which round differently in float32), and
//     NMSWith and BatchedNMSWith, which hand the O(n²) pairwise IoU test
//     to an NMSBackend (lib/cuda's Backend runs it as a CUDA kernel; the
//     sort, NaN scores, batched offsets and the walk over the masks stay on
//     the host), bit for bit the same keep lists as NMSPairSuppressed
//     defines them;
//   - ClipToImage and RemoveSmall;
//   - Coder, the BoxCoder that encodes and decodes regression deltas;
//   - Matcher, which matches predictions to ground truth by IoU;
//   - Sampler, the balanced positive/negative sampler.
//
// Every computation is done in float32 in torchvision's order of operations,
// so that discrete decisions (which box is kept, which anchor is positive)
// agree with torchvision on the same inputs.
//
//	boxes := []box.Box{{0, 0, 10, 10}, {1, 1, 11, 11}, {50, 50, 60, 60}}
//	keep, err := box.NMS(boxes, []float32{0.9, 0.8, 0.7}, 0.5)
//	// keep == [0 2]: box 1 overlaps box 0 with IoU 0.68 > 0.5.
package box
