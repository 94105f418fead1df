package cuda

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// cuBLAS enum values (cublas_api.h, library_types.h).
const (
	cublasOpN         = 0
	cublasOpT         = 1
	cublasDefaultMath = 0 // no TF32: float32 GEMMs stay float32
	propMajorVersion  = 0
	propMinorVersion  = 1
	propPatchLevel    = 2
)

// cublasLib holds libcublas's entry points (cublasStatus_t is int32,
// handles uintptr).
type cublasLib struct {
	path    string
	version string // "11.11.3"

	cublasCreate      func(h *uintptr) int32
	cublasDestroy     func(h uintptr) int32
	cublasSetStream   func(h uintptr, stream uintptr) int32
	cublasSetMathMode func(h uintptr, mode int32) int32
	cublasGetProperty func(prop int32, v *int32) int32
	cublasSgemm       func(h uintptr, ta, tb int32, m, n, k int32, alpha *float32, a uint64, lda int32, b uint64, ldb int32, beta *float32, c uint64, ldc int32) int32
}

func (c *cublasLib) symbols() []symbol {
	return []symbol{
		{name: "cublasCreate_v2", fn: &c.cublasCreate},
		{name: "cublasDestroy_v2", fn: &c.cublasDestroy},
		{name: "cublasSetStream_v2", fn: &c.cublasSetStream},
		{name: "cublasSetMathMode", fn: &c.cublasSetMathMode},
		{name: "cublasGetProperty", fn: &c.cublasGetProperty},
		{name: "cublasSgemm_v2", fn: &c.cublasSgemm},
	}
}

var (
	cublasOnce   sync.Once
	cublasCached *cublasLib
	cublasErr    error
)

// cublasCandidates lists where libcublas is looked for, newest major
// version first within each place.
func cublasCandidates() []string {
	return candidates(cublasSonames, os.Getenv, filepath.Glob)
}

// loadCUBLAS opens and binds cuBLAS once and reads its version (which
// needs no GPU).
func loadCUBLAS() (*cublasLib, error) {
	cublasOnce.Do(func() {
		h, path, err := dlopenFirst(cublasCandidates())
		if err != nil {
			cublasErr = fmt.Errorf("%w: %v (set %s to the directory holding it)", ErrNoCUBLAS, err, EnvLibs)
			return
		}
		c := &cublasLib{path: path}
		if err := bind(h, c.symbols()); err != nil {
			cublasErr = fmt.Errorf("%w: %s: %v", ErrNoCUBLAS, path, err)
			return
		}
		var v [3]int32
		for i := range v {
			if err := cublasError("cublasGetProperty", c.cublasGetProperty(int32(propMajorVersion+i), &v[i])); err != nil {
				cublasErr = err
				return
			}
		}
		c.version = fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2])
		cublasCached = c
	})
	return cublasCached, cublasErr
}
