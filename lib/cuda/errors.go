package cuda

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels that errors.Is recognises in the errors this package returns.
var (
	// ErrNoDriver: libcuda.so.1 (the NVIDIA driver's user-space library)
	// could not be loaded.
	ErrNoDriver = errors.New("cuda: no NVIDIA driver (libcuda.so.1)")
	// ErrNoDevice: the driver loaded but reports no usable GPU
	// (CUDA_ERROR_NO_DEVICE).
	ErrNoDevice = errors.New("cuda: no CUDA device")
	// ErrNoCUBLAS: no libcublas.so.13, .12 or .11 could be loaded.
	ErrNoCUBLAS = errors.New("cuda: no cuBLAS library (libcublas.so.13, .12 or .11)")
	// ErrClosed: the backend was closed.
	ErrClosed = errors.New("cuda: backend closed")
)

// CUresult values the package acts on.
const (
	cudaSuccess         = 0
	cudaErrorNoDevice   = 100
	cublasStatusSuccess = 0
)

// Error is a failed CUDA driver or cuBLAS call.
type Error struct {
	Op   string // the API function, without its _v2 suffix ("cuMemAlloc")
	Code int    // the CUresult or cublasStatus_t value
	Name string // "CUDA_ERROR_OUT_OF_MEMORY"
	Desc string // "out of memory"
}

// Error reads like "cuda: cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY (out of memory)".
func (e *Error) Error() string {
	if e.Desc == "" || e.Desc == e.Name {
		return fmt.Sprintf("cuda: %s: %s", e.Op, e.Name)
	}
	return fmt.Sprintf("cuda: %s: %s (%s)", e.Op, e.Name, e.Desc)
}

// Is makes errors.Is(err, ErrNoDevice) true for CUDA_ERROR_NO_DEVICE.
func (e *Error) Is(target error) bool {
	return target == ErrNoDevice && e.Code == cudaErrorNoDevice && !e.cublas()
}

func (e *Error) cublas() bool { return len(e.Op) >= 6 && e.Op[:6] == "cublas" }

// OpError is the panic value of a Backend operation whose device work
// failed (nn.Backend's methods have no error result).
type OpError struct {
	Op  string // the Backend method ("Conv2d")
	Err error  // what failed
}

// Error reads like "cuda: Conv2d: cuLaunchKernel: CUDA_ERROR_ILLEGAL_ADDRESS
// (an illegal memory access was encountered)".
func (e *OpError) Error() string {
	return "cuda: " + e.Op + ": " + strings.TrimPrefix(e.Err.Error(), "cuda: ")
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// cublasStatusNames are cublasStatus_t's names (cublas_api.h); cuBLAS 11
// has cublasGetStatusName only from 11.4.2, so the table is ours.
var cublasStatusNames = map[int]string{
	0:  "CUBLAS_STATUS_SUCCESS",
	1:  "CUBLAS_STATUS_NOT_INITIALIZED",
	3:  "CUBLAS_STATUS_ALLOC_FAILED",
	7:  "CUBLAS_STATUS_INVALID_VALUE",
	8:  "CUBLAS_STATUS_ARCH_MISMATCH",
	11: "CUBLAS_STATUS_MAPPING_ERROR",
	13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR",
	15: "CUBLAS_STATUS_NOT_SUPPORTED",
	16: "CUBLAS_STATUS_LICENSE_ERROR",
}

// cublasError returns nil for success, else an *Error naming the status.
func cublasError(op string, status int32) error {
	if status == cublasStatusSuccess {
		return nil
	}
	name, ok := cublasStatusNames[int(status)]
	if !ok {
		name = fmt.Sprintf("cublasStatus_t(%d)", status)
	}
	return &Error{Op: op, Code: int(status), Name: name}
}
