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

	// cublasGemmEx's operand types and computation, checked against CUDA
	// 11.8's headers (library_types.h: cudaDataType_t; cublas_api.h:
	// cublasComputeType_t, cublasGemmAlgo_t); the values are the same in
	// cuBLAS 12 and 13.
	cudaR32F          = 0  // CUDA_R_32F: float
	cudaR16F          = 2  // CUDA_R_16F: IEEE binary16 (half)
	cudaR16BF         = 14 // CUDA_R_16BF: bfloat16 (nv_bfloat16)
	cublasCompute32F  = 68 // CUBLAS_COMPUTE_32F: float32 accumulation (not the _FAST_ variants)
	cublasGemmDefault = -1 // CUBLAS_GEMM_DEFAULT: cuBLAS's heuristic picks the algorithm
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
	// cublasGemmEx and cublasGemmStridedBatchedEx (cuBLAS 11, 12 and 13)
	// multiply 16-bit A and B into float32 C for autocast regions; both
	// are optional: without them the backend reports no native reduced
	// precision and layers round their operands themselves.
	cublasGemmEx func(h uintptr, ta, tb int32, m, n, k int32, alpha *float32,
		a uint64, atype, lda int32, b uint64, btype, ldb int32, beta *float32,
		c uint64, ctype, ldc int32, compute, algo int32) int32
	cublasGemmStridedBatchedEx func(h uintptr, ta, tb int32, m, n, k int32, alpha *float32,
		a uint64, atype, lda int32, strideA int64, b uint64, btype, ldb int32, strideB int64, beta *float32,
		c uint64, ctype, ldc int32, strideC int64, batch int32, compute, algo int32) int32
}

func (c *cublasLib) symbols() []symbol {
	return []symbol{
		{name: "cublasCreate_v2", fn: &c.cublasCreate},
		{name: "cublasDestroy_v2", fn: &c.cublasDestroy},
		{name: "cublasSetStream_v2", fn: &c.cublasSetStream},
		{name: "cublasSetMathMode", fn: &c.cublasSetMathMode},
		{name: "cublasGetProperty", fn: &c.cublasGetProperty},
		{name: "cublasSgemm_v2", fn: &c.cublasSgemm},
		{name: "cublasGemmEx", fn: &c.cublasGemmEx, optional: true},
		{name: "cublasGemmStridedBatchedEx", fn: &c.cublasGemmStridedBatchedEx, optional: true},
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
