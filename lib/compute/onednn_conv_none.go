//go:build !((linux || darwin || freebsd) && (amd64 || arm64))

package compute

import "fmt"

// dnnlConvEngine stands for oneDNN's convolution API, which is not bound
// on this platform.
type dnnlConvEngine struct{ version string }

// convPrim stands for a cached oneDNN convolution.
type convPrim struct{ impl string }

func loadConvEngine() (*dnnlConvEngine, error) {
	return nil, fmt.Errorf("compute: %w (loading it is not supported on this platform)", errNoOneDNN)
}

func (e *dnnlConvEngine) prim(k convKey) (*convPrim, error) {
	return nil, fmt.Errorf("compute: %w", errNoOneDNN)
}

func (e *dnnlConvEngine) run(s ConvShape, x, w []float32, ep Epilogue, y []float32, force bool) (bool, error) {
	return false, nil
}
