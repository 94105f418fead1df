//go:build !((linux || darwin || freebsd) && (amd64 || arm64))

package compute

import "fmt"

func loadOneDNN(threads int) (*onednnLib, error) {
	return nil, fmt.Errorf("compute: %w (loading it is not supported on this platform)", errNoOneDNN)
}

// oneDNNGemmPath is never reached here: oneDNN does not load.
func oneDNNGemmPath() string { return "dnnl_sgemm" }
