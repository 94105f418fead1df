//go:build !((linux || darwin || freebsd) && (amd64 || arm64))

package compute

import "errors"

var errNoOpenBLAS = errors.New("OpenBLAS loading is not supported on this platform")

func loadOpenBLAS(threads int) (*openblasLib, error) {
	return nil, errNoOpenBLAS
}
