package compute

import (
	"errors"
	"runtime"
	"sync"
)

// errNoOneDNN says how to get the library.
var errNoOneDNN = errors.New("oneDNN (libdnnl.so.3 or .2) not installed: apt-get install libdnnl2")

// onednnLib is a loaded oneDNN.
type onednnLib struct {
	version string // "2.6.3"
	runtime string // CPU threading runtime: "omp", "tbb", "sequential", ...
	threads int    // threads its GEMM uses
	// sgemm runs products under smallGemm in Go, the rest through cached
	// matmul primitives (matmulSgemm; raw where the matmul cannot run).
	sgemm gemmFunc
	// raw calls dnnl_sgemm whatever the size (m, n > 0; alpha == 0 and
	// k == 0 are done in Go), for tests and benchmarks.
	raw gemmFunc
}

var oneDNN = sync.OnceValues(func() (*onednnLib, error) {
	return loadOneDNN(runtime.GOMAXPROCS(0))
})
