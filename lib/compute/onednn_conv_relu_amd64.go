//go:build amd64 && !purego

package compute

// Implemented in onednn_conv_relu_amd64.s.

// reluAVX2 sets the n (a multiple of 8) float32s at p that are <= 0 to +0,
// leaving NaN as it is.
//
//go:noescape
func reluAVX2(p *float32, n int)

var reluHasAVX2 = hasAVX2FMA()

// reluInPlace replaces every v <= 0 of y by +0 and keeps NaN (the Go
// epilogue's max(v, 0)); oneDNN's own ReLU post-op is vmaxps(v, 0), which
// turns NaN into 0.
func reluInPlace(y []float32) {
	n := 0
	if reluHasAVX2 {
		n = len(y) &^ 7
		if n > 0 {
			reluAVX2(&y[0], n)
		}
	}
	reluGo(y[n:])
}
