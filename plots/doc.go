// Package plots draws the figures a detection notebook wants to see, on
// gonum/plot: training losses (raw and smoothed), the learning rate and the
// loss scale, two runs compared, detections drawn on an image, anchors (one
// location's shapes, a configuration over an image, a dataset's coverage),
// precision-recall curves per class and per-layer gradient norms.
//
// Every function returns a value the detlab kernel shows inline when it is a
// cell's last expression: a *Figure (a plot with its size, rendered as PNG
// and SVG) or an *Image (a picture with boxes drawn on it, an image.Image
// with a PNG method). Both save to a file whose extension picks the format:
//
//	fig, err := plots.Losses(hist)
//	fig                              // shown under the cell
//	err = fig.Save("/tmp/losses.png") // or .svg, .pdf
//
// Bad input (an empty history, NaN values, a box outside the image) is an
// error wrapping ErrInput that names the problem, or, for values that can be
// left out of a figure (a NaN loss, a box partly outside), is skipped or
// clipped as documented on each function.
package plots
