package compute

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
)

// EnvBLAS is the environment variable that forces a backend: "go" for the
// Go implementation with the best assembly kernel the CPU runs, "portable"
// for the Go implementation with its portable (no assembly) kernel,
// "openblas" for OpenBLAS, "onednn" for oneDNN (its matmul primitive, dnnl_sgemm where that cannot run; each falling
// back to Go, with the reason in Backend, when its library cannot be
// loaded). Unset or "auto" uses the Go implementation where the AVX-512
// kernel runs, otherwise OpenBLAS when present.
const EnvBLAS = "DETLAB_BLAS"

// gemmFunc is the signature every backend implements.
type gemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

type backend struct {
	name string
	gemm gemmFunc
}

var chosen = sync.OnceValue(func() backend { return chooseBackend(os.Getenv(EnvBLAS)) })

// chooseBackend picks the backend for a DETLAB_BLAS value.
func chooseBackend(env string) backend {
	pure := backend{name: "Go, " + bestKernel().name, gemm: sgemmGo}
	switch strings.ToLower(strings.TrimSpace(env)) {
	case "go", "purego", "pure":
		pure.name += " (" + EnvBLAS + "=go)"
		return pure
	case "portable":
		return backend{name: "Go, " + goKernel.name + " (" + EnvBLAS + "=portable)", gemm: sgemmPortable}
	case "onednn", "dnnl":
		lib, err := oneDNN()
		if err != nil {
			pure.name += fmt.Sprintf(" (%s=onednn but %v)", EnvBLAS, err)
			return pure
		}
		return backend{name: fmt.Sprintf("onednn %s (%s; runtime, %s, %d threads)", lib.version, oneDNNGemmPath(), lib.runtime, lib.threads), gemm: lib.sgemm}
	case "", "auto":
		if strings.HasPrefix(bestKernel().name, "avx512") {
			// Measured on a Zen 5 EPYC (Faster R-CNN train step): the Go
			// AVX-512 kernel used 30% less CPU time than OpenBLAS 0.3.21,
			// whose idle threads also spin. oneDNN 2.6.3's dnnl_sgemm is
			// faster per product on ResNet's conv shapes, but end to end
			// (2026-11-29, detlab-bench) it used 35-60% more CPU time and
			// 1.8-2x the peak memory: with a native library a convolution
			// writes its patch matrix out (SgemmPanels) instead of packing
			// it straight into the Go kernel's panels with a fused epilogue.
			pure.name += " (auto: preferred to OpenBLAS with AVX-512)"
			return pure
		}
		fallthrough
	case "openblas":
		lib, err := openBLAS()
		if err != nil {
			if env != "" && !strings.EqualFold(env, "auto") {
				pure.name += fmt.Sprintf(" (%s=openblas but %v)", EnvBLAS, err)
			}
			return pure
		}
		return backend{name: fmt.Sprintf("openblas %s (runtime, %d threads)", lib.version, lib.threads), gemm: lib.sgemm}
	default:
		pure.name += fmt.Sprintf(" (unknown %s=%q; want go, portable, openblas or onednn)", EnvBLAS, env)
		return pure
	}
}

// Backend names the implementation Sgemm runs, e.g.
// "openblas 0.3.21 (runtime, 2 threads)", "onednn 2.6.3 (matmul primitives; runtime, omp, 2
// threads)", "Go, avx2+fma assembly kernel 6x16" or "Go, portable kernel
// 4x4", with the reason when DETLAB_BLAS asked for something that could not
// be used.
func Backend() string { return chosen().name }

// sgemmPortable is the Go Sgemm with the portable kernel.
func sgemmPortable(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemmKernel(goKernel, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// sgemm dispatches to the chosen backend.
func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	chosen().gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// smallGemm is the m*n*k under which the OpenBLAS path runs the pure-Go
// kernel instead.
const smallGemm = 4096

// openblasLib is a loaded OpenBLAS.
type openblasLib struct {
	version string
	threads int
	sgemm   gemmFunc
}

var openBLAS = sync.OnceValues(func() (*openblasLib, error) {
	return loadOpenBLAS(runtime.GOMAXPROCS(0))
})

// getenv is os.Getenv, kept apart so the platform files share it.
func getenv(k string) string { return os.Getenv(k) }
