//go:build (linux || darwin || freebsd) && (amd64 || arm64)

package compute

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/ebitengine/purego"

	"github.com/detlab/detlab/lib/internal/dl"
)

// EnvOpenBLASPath names an explicit OpenBLAS shared library to load instead
// of searching the usual sonames.
const EnvOpenBLASPath = "DETLAB_OPENBLAS"

// CBLAS enum values.
const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

// errNoOpenBLAS says how to get the library.
var errNoOpenBLAS = errors.New("libopenblas0 not installed: apt-get install libopenblas0")

// loadOpenBLAS opens libopenblas with dlopen (no cgo needed), binds
// cblas_sgemm and sets the library's thread count.
func loadOpenBLAS(threads int) (lib *openblasLib, err error) {
	defer func() {
		// purego panics when a symbol's signature cannot be bound.
		if r := recover(); r != nil {
			lib, err = nil, fmt.Errorf("compute: binding OpenBLAS: %v", r)
		}
	}()
	names := []string{"libopenblas.so.0", "libopenblas.so", "libopenblas.dylib", "libopenblas.0.dylib"}
	if p := getenv(EnvOpenBLASPath); p != "" {
		names = []string{p}
	}
	h, _, errs := dl.OpenFirst(names, purego.RTLD_NOW|purego.RTLD_LOCAL, nil)
	if h == 0 {
		return nil, fmt.Errorf("compute: %w (%s)", errNoOpenBLAS, strings.Join(errs, "; "))
	}
	for _, s := range []string{"cblas_sgemm", "openblas_set_num_threads", "openblas_get_config"} {
		if _, err := purego.Dlsym(h, s); err != nil {
			return nil, fmt.Errorf("compute: OpenBLAS lacks %s: %w", s, err)
		}
	}
	var (
		cSgemm     func(order, ta, tb, m, n, k int32, alpha float32, a *float32, lda int32, b *float32, ldb int32, beta float32, c *float32, ldc int32)
		setThreads func(int32)
		getConfig  func() string
	)
	purego.RegisterLibFunc(&cSgemm, h, "cblas_sgemm")
	purego.RegisterLibFunc(&setThreads, h, "openblas_set_num_threads")
	purego.RegisterLibFunc(&getConfig, h, "openblas_get_config")
	setThreads(int32(threads))
	version := "unknown"
	if f := strings.Fields(getConfig()); len(f) >= 2 && f[0] == "OpenBLAS" {
		version = f[1]
	}
	gemm := func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		if alpha == 0 || k == 0 || m*n*k < smallGemm || max(m, n, k, lda, ldb, ldc) > math.MaxInt32 {
			// BLAS's quick return; tiny products, where the foreign call
			// costs more than the arithmetic; sizes that overflow int32.
			sgemmGo(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			return
		}
		ta, tb := int32(cblasNoTrans), int32(cblasNoTrans)
		if transA {
			ta = cblasTrans
		}
		if transB {
			tb = cblasTrans
		}
		cSgemm(cblasRowMajor, ta, tb, int32(m), int32(n), int32(k), alpha, &a[0], int32(lda), &b[0], int32(ldb), beta, &c[0], int32(ldc))
	}
	return &openblasLib{version: version, threads: threads, sgemm: gemm}, nil
}
