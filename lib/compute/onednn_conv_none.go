//go:build !((linux || darwin || freebsd) && (amd64 || arm64))

package compute

import "fmt"

// dnnlConvEngine stands for oneDNN's convolution API, which is not bound
// on this platform.
type dnnlConvEngine struct{ version string }

// convPrim stands for a cached oneDNN convolution.
type convPrim struct {
	impl, wKind string
	wBytes      int
}

func loadConvEngine() (*dnnlConvEngine, error) {
	return nil, fmt.Errorf("compute: %w (loading it is not supported on this platform)", errNoOneDNN)
}

func (e *dnnlConvEngine) prim(k convKey) (*convPrim, error) {
	return nil, fmt.Errorf("compute: %w", errNoOneDNN)
}

func (e *dnnlConvEngine) run(s ConvShape, x, w []float32, pw *OneDNNWeights, ep Epilogue, y []float32, force bool) (bool, error) {
	return false, nil
}

func (e *dnnlConvEngine) weightsKind(s ConvShape, ep Epilogue, force bool) (string, bool) {
	return "", false
}

func (e *dnnlConvEngine) newWeights(s ConvShape, ep Epilogue, w []float32) (*OneDNNWeights, error) {
	return nil, fmt.Errorf("compute: %w", errNoOneDNN)
}

// OneDNNWeights are a convolution's weights reordered for oneDNN (never
// made on this platform).
type OneDNNWeights struct{}

// DerivedBytes reports the memory the weights hold.
func (w *OneDNNWeights) DerivedBytes() int64 { return 0 }

// Kind names the layout.
func (w *OneDNNWeights) Kind() string { return "" }
