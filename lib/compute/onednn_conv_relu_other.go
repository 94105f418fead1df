//go:build !amd64 || purego

package compute

// reluInPlace replaces every v <= 0 of y by +0 and keeps NaN (the Go
// epilogue's max(v, 0)); oneDNN's own ReLU post-op is vmaxps(v, 0), which
// turns NaN into 0.
func reluInPlace(y []float32) { reluGo(y) }
