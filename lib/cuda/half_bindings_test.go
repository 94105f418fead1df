package cuda

import (
	"strings"
	"testing"

	"github.com/detlab/detlab/lib/nn"
)

// TestGemmExBindingsCallable calls cublasGemmEx (19 arguments) and
// cublasGemmStridedBatchedEx (23, 64-bit strides among them) with a NULL
// handle: each must return a cuBLAS status rather than crash, which
// exercises purego's passing of their stack arguments. It needs cuBLAS
// only (no GPU).
func TestGemmExBindingsCallable(t *testing.T) {
	c, err := loadCUBLAS()
	if err != nil {
		t.Skipf("no cuBLAS: %v", err)
	}
	if c.cublasGemmEx == nil || c.cublasGemmStridedBatchedEx == nil {
		t.Fatalf("cuBLAS %s (%s) lacks cublasGemmEx or cublasGemmStridedBatchedEx, present since cuBLAS 11", c.version, c.path)
	}
	var alpha, beta float32 = 1, 0
	for _, s := range []struct {
		name   string
		status int32
	}{
		{"cublasGemmEx", c.cublasGemmEx(0, cublasOpN, cublasOpT, 2, 2, 2, &alpha, 16, cudaR16BF, 2, 16, cudaR16BF, 2,
			&beta, 16, cudaR32F, 2, cublasCompute32F, cublasGemmDefault)},
		{"cublasGemmStridedBatchedEx", c.cublasGemmStridedBatchedEx(0, cublasOpN, cublasOpN, 2, 2, 2, &alpha, 16, cudaR16F, 2, 0,
			16, cudaR16F, 2, 4, &beta, 16, cudaR32F, 2, 4, 3, cublasCompute32F, cublasGemmDefault)},
	} {
		if err := cublasError(s.name, s.status); err == nil || !strings.Contains(err.Error(), "CUBLAS_STATUS_") {
			t.Errorf("%s with a NULL handle: %v, want a named cuBLAS status", s.name, err)
		}
	}
}

// TestHalfGemmCapability checks which devices cudaGPU reports native
// bfloat16 and float16 on (no GPU needed: only the capability and the
// bound symbols are read).
func TestHalfGemmCapability(t *testing.T) {
	bound := &cublasLib{
		cublasGemmEx: func(uintptr, int32, int32, int32, int32, int32, *float32, uint64, int32, int32, uint64, int32, int32, *float32, uint64, int32, int32, int32, int32) int32 {
			return 0
		},
		cublasGemmStridedBatchedEx: func(uintptr, int32, int32, int32, int32, int32, *float32, uint64, int32, int32, int64, uint64, int32, int32, int64, *float32, uint64, int32, int32, int64, int32, int32, int32) int32 {
			return 0
		},
	}
	for _, c := range []struct {
		cap        string
		lib        *cublasLib
		bf16, fp16 bool
	}{
		{"9.0", bound, true, true},
		{"8.6", bound, true, true},
		{"7.5", bound, false, true},
		{"5.3", bound, false, true},
		{"5.2", bound, false, false},
		{"9.0", &cublasLib{}, false, false}, // cuBLAS without GemmEx
		{"?", bound, false, false},
	} {
		g := &cudaGPU{c: c.lib, info: DeviceInfo{Capability: c.cap}}
		if got := g.halfGemm(nn.BFloat16); got != c.bf16 {
			t.Errorf("capability %s: bfloat16 native %v, want %v", c.cap, got, c.bf16)
		}
		if got := g.halfGemm(nn.Float16); got != c.fp16 {
			t.Errorf("capability %s: float16 native %v, want %v", c.cap, got, c.fp16)
		}
		if g.halfGemm(nn.Float32) {
			t.Errorf("capability %s: float32 reported as a native reduced precision", c.cap)
		}
	}
}
