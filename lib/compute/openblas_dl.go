//go:build (linux || darwin || freebsd) && (amd64 || arm64)

package compute

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/detlab/detlab/lib/internal/dl"
	"github.com/detlab/detlab/lib/internal/freelist"
)

// EnvOpenBLASPath names an explicit OpenBLAS shared library to load instead
// of searching the usual sonames.
const EnvOpenBLASPath = "DETLAB_OPENBLAS"

// errNoOpenBLAS says how to get the library.
var errNoOpenBLAS = errors.New("libopenblas0 not installed: apt-get install libopenblas0")

// sgemmArgs holds the scalar arguments of one call to OpenBLAS's Fortran
// sgemm_, which takes every argument by pointer. The blocks come from
// sgemmArgsFree, so they are on the heap (the garbage collector does not
// move heap objects) and a steady-state call allocates none; each call
// holds its own block, so concurrent calls do not share one.
type sgemmArgs struct {
	transA, transB byte // 'N' or 'T'
	m, n, k        int32
	lda, ldb, ldc  int32
	alpha, beta    float32

	// args is sgemm_'s argument list, built here rather than in a
	// variadic call: SyscallN is //go:uintptrescapes, which makes the
	// compiler put a call's "..." list on the heap, one allocation a call.
	args [13]uintptr
}

// sgemmArgsFree recycles argument blocks between calls.
var sgemmArgsFree freelist.List[sgemmArgs]

// blas64BitInts reports whether an openblas_get_config string describes a
// build with 64-bit BLAS integers (USE64BITINT, as in Debian's
// libopenblas64-0), whose sgemm_ reads its integer arguments as int64.
func blas64BitInts(config string) bool {
	for _, f := range strings.Fields(config) {
		if strings.EqualFold(f, "USE64BITINT") {
			return true
		}
	}
	return false
}

// loadOpenBLAS opens libopenblas with dlopen (no cgo needed), finds sgemm_
// (the Fortran interface: every argument by pointer, which purego.SyscallN
// passes without the per-call allocations of a reflect-bound function) and
// sets the library's thread count.
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
	h, name, errs := dl.OpenFirst(names, purego.RTLD_NOW|purego.RTLD_LOCAL, nil)
	if h == 0 {
		return nil, fmt.Errorf("compute: %w (%s)", errNoOpenBLAS, strings.Join(errs, "; "))
	}
	syms := map[string]uintptr{}
	for _, s := range []string{"sgemm_", "openblas_set_num_threads", "openblas_get_config"} {
		p, err := purego.Dlsym(h, s)
		if err != nil {
			return nil, fmt.Errorf("compute: OpenBLAS (%s) lacks %s: %w", name, s, err)
		}
		syms[s] = p
	}
	var (
		setThreads func(int32)
		getConfig  func() string
	)
	purego.RegisterFunc(&setThreads, syms["openblas_set_num_threads"])
	purego.RegisterFunc(&getConfig, syms["openblas_get_config"])
	config := getConfig()
	if blas64BitInts(config) {
		return nil, fmt.Errorf("compute: OpenBLAS (%s) was built with 64-bit integers (%q); detlab binds the 32-bit interface of libopenblas0", name, config)
	}
	setThreads(int32(threads))
	version := "unknown"
	if f := strings.Fields(config); len(f) >= 2 && f[0] == "OpenBLAS" {
		version = f[1]
	}
	return &openblasLib{version: version, threads: threads, sgemm: fortranSgemm(syms["sgemm_"])}, nil
}

// fortranSgemm returns the backend's gemmFunc calling sgemm_ at fn.
func fortranSgemm(fn uintptr) gemmFunc {
	return func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		if alpha == 0 || k == 0 || m*n*k < smallGemm || max(m, n, k, lda, ldb, ldc) > math.MaxInt32 {
			// BLAS's quick return; tiny products, where the foreign call
			// costs more than the arithmetic; sizes that overflow int32.
			sgemmGo(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			return
		}
		// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T:
		// the operands swap places, and so do m and n.
		p := sgemmArgsFree.Get()
		*p = sgemmArgs{transA: 'N', transB: 'N', m: int32(m), n: int32(n), k: int32(k),
			lda: int32(lda), ldb: int32(ldb), ldc: int32(ldc), alpha: alpha, beta: beta}
		if transA {
			p.transA = 'T'
		}
		if transB {
			p.transB = 'T'
		}
		// The conversions to uintptr stay in the call expression
		// (unsafe.Pointer rule 4; callSgemm is //go:uintptrescapes), which
		// keeps a, b and c alive and in place until sgemm_ returns.
		callSgemm(fn, p, uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&c[0])))
		sgemmArgsFree.Put(p)
	}
}

// callSgemm calls sgemm_ at fn with the scalars in p and the matrices at
// a, b and c (row-major operands, so B goes first). It is
// //go:uintptrescapes like purego.SyscallN: a, b and c must be converted
// from pointers in the call expression, which keeps their objects on the
// heap and alive for the call.
//
//go:uintptrescapes
func callSgemm(fn uintptr, p *sgemmArgs, a, b, c uintptr) {
	p.args = [13]uintptr{
		uintptr(unsafe.Pointer(&p.transB)), uintptr(unsafe.Pointer(&p.transA)),
		uintptr(unsafe.Pointer(&p.n)), uintptr(unsafe.Pointer(&p.m)), uintptr(unsafe.Pointer(&p.k)),
		uintptr(unsafe.Pointer(&p.alpha)),
		b, uintptr(unsafe.Pointer(&p.ldb)),
		a, uintptr(unsafe.Pointer(&p.lda)),
		uintptr(unsafe.Pointer(&p.beta)),
		c, uintptr(unsafe.Pointer(&p.ldc)),
	}
	purego.SyscallN(fn, p.args[:]...)
	runtime.KeepAlive(p)
}
