//go:build (linux || darwin || freebsd) && (amd64 || arm64)

package compute

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ebitengine/purego"

	"github.com/detlab/detlab/lib/internal/dl"
)

// EnvOneDNNPath names an explicit oneDNN shared library to load instead of
// searching the usual sonames (libdnnl.so.3, libdnnl.so.2).
const EnvOneDNNPath = "DETLAB_ONEDNN"

// dnnlVersion mirrors oneDNN's dnnl_version_t (identical in 2.x and 3.x).
type dnnlVersion struct {
	Major, Minor, Patch    int32
	Hash                   *byte
	CPURuntime, GPURuntime uint32
}

// dnnlRuntimeName names a dnnl_version_t cpu_runtime value (DNNL_RUNTIME_*).
func dnnlRuntimeName(r uint32) string {
	switch r {
	case 0:
		return "no runtime"
	case 1:
		return "sequential"
	case 2:
		return "omp"
	case 4:
		return "tbb"
	case 8:
		return "threadpool"
	}
	return fmt.Sprintf("runtime %#x", r)
}

// dnnlStatusName names a dnnl_status_t value (dnnl_types.h, 2.x and 3.x).
func dnnlStatusName(s int32) string {
	names := []string{"success", "out of memory", "invalid arguments", "unimplemented",
		"iterator ends", "runtime error", "not required", "invalid graph",
		"invalid graph op", "invalid shape", "invalid data type"}
	if s >= 0 && int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprintf("status %d", s)
}

// loadOneDNN opens libdnnl with dlopen (no cgo, no headers needed) and binds
// dnnl_sgemm and dnnl_version; the backend's products run on oneDNN's
// matmul primitive (matmulSgemm), with dnnl_sgemm as its fallback. With the OpenMP runtime (Debian's build),
// OMP_NUM_THREADS is set to threads before the library (and so libgomp,
// which reads it once at load) is loaded, unless the user already set it;
// the thread count reported is what OpenMP then says it will use.
// oneDNNNames are the library names loadOneDNN tries, in order: the one
// DETLAB_ONEDNN names, or the usual sonames.
func oneDNNNames() []string {
	if p := getenv(EnvOneDNNPath); p != "" {
		return []string{p}
	}
	return []string{"libdnnl.so.3", "libdnnl.so.2", "libdnnl.so", "libdnnl.3.dylib", "libdnnl.2.dylib", "libdnnl.dylib"}
}

// dnnlHandle loads oneDNN through compute's loader (which sets up its
// OpenMP threads) and returns the library's handle for binding more of
// its API: dlopen of the same names in the same order returns the handle
// the loader opened, counting one more reference.
func dnnlHandle() (uintptr, error) {
	if _, err := oneDNN(); err != nil {
		return 0, err
	}
	h, _, _ := dl.OpenFirst(oneDNNNames(), purego.RTLD_NOW|purego.RTLD_LOCAL, nil)
	if h == 0 {
		return 0, fmt.Errorf("compute: %w", errNoOneDNN)
	}
	return h, nil
}

// dnnlHandleV2 is dnnlHandle for binding a part of oneDNN 2.x's C API
// (what: "convolutions are", "matmul is"): it fails, naming the part, on another
// major version, and returns the version as "2.6.3".
func dnnlHandleV2(what string) (h uintptr, version string, err error) {
	if h, err = dnnlHandle(); err != nil {
		return 0, "", err
	}
	var versionOf func() *dnnlVersion
	purego.RegisterLibFunc(&versionOf, h, "dnnl_version")
	v := versionOf()
	if v == nil || v.Major != 2 {
		major := int32(-1)
		if v != nil {
			major = v.Major
		}
		return 0, "", fmt.Errorf("compute: oneDNN major version %d: its %s bound for the 2.x C API only", major, what)
	}
	return h, fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch), nil
}

func loadOneDNN(threads int) (lib *onednnLib, err error) {
	defer func() {
		// purego panics when a symbol's signature cannot be bound.
		if r := recover(); r != nil {
			lib, err = nil, fmt.Errorf("compute: binding oneDNN: %v", r)
		}
	}()
	names := oneDNNNames()
	if _, set := os.LookupEnv("OMP_NUM_THREADS"); !set && threads > 0 {
		// os.Setenv reaches the C environment (purego runs the cgo or
		// fakecgo runtime, both of which forward setenv to libc).
		os.Setenv("OMP_NUM_THREADS", strconv.Itoa(threads))
	}
	h, _, errs := dl.OpenFirst(names, purego.RTLD_NOW|purego.RTLD_LOCAL, nil)
	if h == 0 {
		return nil, fmt.Errorf("compute: %w (%s)", errNoOneDNN, strings.Join(errs, "; "))
	}
	for _, s := range []string{"dnnl_sgemm", "dnnl_version"} {
		if _, err := purego.Dlsym(h, s); err != nil {
			return nil, fmt.Errorf("compute: oneDNN lacks %s: %w", s, err)
		}
	}
	var (
		cSgemm  func(ta, tb byte, m, n, k int64, alpha float32, a *float32, lda int64, b *float32, ldb int64, beta float32, c *float32, ldc int64) int32
		version func() *dnnlVersion
	)
	purego.RegisterLibFunc(&cSgemm, h, "dnnl_sgemm")
	purego.RegisterLibFunc(&version, h, "dnnl_version")
	v := version()
	if v == nil {
		return nil, fmt.Errorf("compute: oneDNN's dnnl_version returned NULL")
	}
	lib = &onednnLib{
		version: fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch),
		runtime: dnnlRuntimeName(v.CPURuntime),
		threads: threads,
	}
	if v.CPURuntime == 1 {
		lib.threads = 1
	} else if _, err := purego.Dlsym(h, "omp_get_max_threads"); v.CPURuntime == 2 && err == nil {
		// dlsym on the library's handle also searches its dependencies,
		// libgomp among them.
		var maxThreads func() int32
		purego.RegisterLibFunc(&maxThreads, h, "omp_get_max_threads")
		lib.threads = int(maxThreads())
	}
	lib.raw = func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		if alpha == 0 || k == 0 {
			// BLAS's quick return, C = beta*C. oneDNN 2.6.3 gets it wrong:
			// with k == 0 and op(B) = B it leaves C unscaled.
			scaleC(m, n, beta, c, ldc)
			return
		}
		ta, tb := byte('N'), byte('N')
		if transA {
			ta = 'T'
		}
		if transB {
			tb = 'T'
		}
		// Pointers to the first element: dnnl_sgemm reads no operand
		// whose dimension is 0, but Go needs a valid address to take.
		if st := cSgemm(ta, tb, int64(m), int64(n), int64(k), alpha, first(a), int64(lda), first(b), int64(ldb), beta, first(c), int64(ldc)); st != 0 {
			// Sgemm has checked every argument, so this is the library
			// failing (out of memory), as a Go allocation would panic.
			panic(fmt.Sprintf("compute: dnnl_sgemm(%c, %c, %d, %d, %d): %s", ta, tb, m, n, k, dnnlStatusName(st)))
		}
	}
	lib.sgemm = func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		if m*n*k < smallGemm {
			// Tiny products, where the foreign call and the OpenMP fork
			// cost more than the arithmetic.
			sgemmGo(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			return
		}
		matmulSgemm(lib.raw, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}
	return lib, nil
}

// oneDNNGemmPath says, for Backend, which oneDNN call the products take
// (after oneDNN has loaded: matmulEngine waits for it).
func oneDNNGemmPath() string {
	if _, err := matmulEngine(); err != nil {
		return fmt.Sprintf("dnnl_sgemm: %v", err)
	}
	return "matmul primitives"
}

// matmulSgemm runs a product (m, n > 0) through oneDNN's matmul primitive
// (onednn_matmul_dl.go), which allocates nothing per call, and through
// fallback (dnnl_sgemm) where the matmul cannot run it: a oneDNN other than
// 2.x, whose matmul API is not bound, or a shape for which oneDNN offers
// only its reference implementation or none.
func matmulSgemm(fallback gemmFunc, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if alpha == 0 || k == 0 {
		// BLAS's quick return, C = beta*C (see raw on oneDNN and k == 0).
		scaleC(m, n, beta, c, ldc)
		return
	}
	if e, err := matmulEngine(); err == nil && e.sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
		return
	}
	fallback(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// first returns the address of s's first element, or of a zero scratch
// value when s is empty (oneDNN reads nothing through it then).
func first(s []float32) *float32 {
	if len(s) == 0 {
		return new(float32)
	}
	return &s[0]
}
