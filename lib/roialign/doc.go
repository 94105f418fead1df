// Package roialign implements RoIAlign exactly as torchvision.ops.roi_align
// (torchvision 0.14, CPU kernels), forward and backward, on NCHW float32
// feature maps, plus the single-level scale inference of
// torchvision.ops.MultiScaleRoIAlign.
//
// Regions of interest are rows [batch_index, x1, y1, x2, y2] in image
// coordinates; SpatialScale maps them onto the feature map (1/32 for a
// stride-32 backbone). With Aligned false (torchvision's default and Faster
// R-CNN's), feature pixel centres sit at integer coordinates and every roi
// is at least one feature pixel wide and high.
//
//	cfg := roialign.Defaults(1.0 / 32)       // 7x7, sampling ratio 2, aligned=false
//	out, err := roialign.Forward(features, rois, cfg)   // (K, C, 7, 7)
//	grad, err := roialign.Backward(gradOut, rois, features.Shape(), cfg)
//
// The kernels are parallel over rois (forward) and channel ranges
// (backward, so no two goroutines write the same gradient element and the
// result does not depend on the number of goroutines). The gorgonia op lives
// in the gorgop subpackage, so this package stays free of gorgonia.
//
// On a graph (Apply) whose backend implements Backend, as lib/cuda's GPU
// backend does, the pooling and its gradient run on that backend instead
// of the host loops; lib/cuda's kernels give the host's results bit for
// bit (same stencils, same summation order, no atomics).
package roialign
