//go:build (linux || darwin || freebsd) && (amd64 || arm64)

package compute

// The oneDNN GEMM backend's products, through oneDNN's matmul primitive
// rather than dnnl_sgemm: dnnl_sgemm takes alpha and beta as floats by
// value, which purego.SyscallN cannot pass alongside integer arguments, so
// it can only be bound with purego.RegisterLibFunc, whose reflect-based
// calls allocate on every product (about 12 allocations, 420 B, a call).
// A matmul primitive is made once per product shape and cached; a call
// then makes only integer-argument calls (set the three memory handles,
// execute, wait) through dnnlCall, which allocates nothing.

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// More of oneDNN 2.x's C API (dnnl_types.h of 2.6.3, checked with a C
// program against libdnnl-dev 2.6.3; unchanged from 2.0 to 2.7).
const (
	dnnlMatmulDescSize      = 2800       // sizeof(dnnl_matmul_desc_t)
	dnnlArgAttrOutputScales = 513        // DNNL_ARG_ATTR_OUTPUT_SCALES
	dnnlRuntimeF32ValBits   = 0x7fc000d0 // DNNL_RUNTIME_F32_VAL's bits

	// matmulCacheSize bounds the cached matmul primitives (one per
	// product shape, alpha == 1 or not, beta == 0 or not); Faster
	// R-CNN's varying image sizes keep making new shapes, and a full
	// cache drops its oldest.
	matmulCacheSize = 256
)

// dnnlRuntimeF32Val is DNNL_RUNTIME_F32_VAL: an output scale given at
// execution (DNNL_ARG_ATTR_OUTPUT_SCALES) rather than at creation.
var dnnlRuntimeF32Val = [1]uint32{dnnlRuntimeF32ValBits}

// dnnlMatmulAPI holds the 2.x C API that the matmul products call: as in
// dnnlConvAPI, what runs once per shape is bound with
// purego.RegisterLibFunc, what every product calls (setHandle, execute,
// wait) is a C function's address for dnnlCall.
type dnnlMatmulAPI struct {
	setHandle, execute, wait uintptr

	engineCreate        func(eng unsafe.Pointer, kind int32, index uintptr) int32
	streamCreate        func(st unsafe.Pointer, eng uintptr, flags uint32) int32
	mdInitByStrides     func(md unsafe.Pointer, ndims int32, dims unsafe.Pointer, dt int32, strides unsafe.Pointer) int32
	mdInitByTag         func(md unsafe.Pointer, ndims int32, dims unsafe.Pointer, dt int32, tag int32) int32
	matmulDescInit      func(d, src, weights, bias, dst unsafe.Pointer) int32
	attrCreate          func(attr unsafe.Pointer) int32
	attrDestroy         func(attr uintptr) int32
	attrSetOutputScales func(attr uintptr, count int64, mask int32, scales unsafe.Pointer) int32
	attrSetPostOps      func(attr, po uintptr) int32
	postOpsCreate       func(po unsafe.Pointer) int32
	postOpsDestroy      func(po uintptr) int32
	postOpsAppendSum    func(po uintptr, scale float32) int32
	iterCreate          func(it unsafe.Pointer, opDesc unsafe.Pointer, attr, eng, hint uintptr) int32
	iterNext            func(it uintptr) int32
	iterFetch           func(it uintptr) uintptr
	iterDestroy         func(it uintptr) int32
	pdQuery             func(pd uintptr, what, index int32, result unsafe.Pointer) int32
	pdDestroy           func(pd uintptr) int32
	primCreate          func(p unsafe.Pointer, pd uintptr) int32
	primDestroy         func(p uintptr) int32
	memCreate           func(m unsafe.Pointer, md unsafe.Pointer, eng uintptr, handle uintptr) int32
	memDestroy          func(m uintptr) int32
	memGetDataHandle    func(m uintptr, handle unsafe.Pointer) int32
}

// matmulKey is one product shape: everything a matmul primitive is made
// for. scaled says alpha != 1 (a run-time output scale), sum that beta !=
// 0 (a sum post-op adding C).
type matmulKey struct {
	transA, transB bool
	m, n, k        int
	lda, ldb, ldc  int
	scaled, sum    bool
}

// matmulPrim is one cached matmul primitive with its memory objects: a,
// b and c wrap the caller's matrices (handles set on every call, cleared
// after); alpha is a one-float buffer of oneDNN's, which alphaVal points
// into, holding the run-time output scale.
type matmulPrim struct {
	impl string // oneDNN's implementation name, e.g. "gemm:jit"
	err  error  // oneDNN refused the shape: the caller falls back

	prim     uintptr
	a, b, c  uintptr
	alpha    uintptr
	alphaVal *float32 // C memory
	args     [4]execArg
	nargs    int
	owned    []uintptr // memories to destroy
}

// dnnlMatmul is the matmul products' CPU engine and stream with the
// primitives made so far. mu serialises everything: a primitive's memory
// objects hold one call's pointers at a time, and the engine has one
// stream. Each product already runs on every OpenMP
// thread, so concurrent callers lose nothing by taking turns.
type dnnlMatmul struct {
	api     dnnlMatmulAPI
	version string
	eng     uintptr
	stream  uintptr

	mu    sync.Mutex
	cache map[matmulKey]*matmulPrim
	order []matmulKey // oldest first, for eviction
	limit int         // the most primitives kept: matmulCacheSize

	// callArgs is the argument list of the dnnlCall in progress (mu
	// held): part of the engine, so on the heap and reused.
	callArgs [4]uintptr
}

// matmulEngine returns the engine, made on the first product too big for
// Go. It is set by init, not by its declaration: openMatmul loads oneDNN
// first (which sets up its OpenMP threads), and oneDNN's loader refers to
// matmulEngine, an initialization cycle for a declaration.
var matmulEngine func() (*dnnlMatmul, error)

func init() { matmulEngine = sync.OnceValues(openMatmul) }

// openMatmul binds oneDNN's matmul API and makes the engine and stream.
// Only the 2.x C API is bound (3.x replaced the operation descriptors);
// with another major version the backend keeps dnnl_sgemm.
func openMatmul() (e *dnnlMatmul, err error) {
	defer func() {
		// purego panics when a symbol's signature cannot be bound.
		if r := recover(); r != nil {
			e, err = nil, fmt.Errorf("compute: binding oneDNN's matmul: %v", r)
		}
	}()
	h, version, err := dnnlHandleV2("matmul is")
	if err != nil {
		return nil, err
	}
	e = &dnnlMatmul{cache: map[matmulKey]*matmulPrim{}, limit: matmulCacheSize}
	a := &e.api
	e.version = version
	if err := bindDNNL(h, []dnnlBinding{
		{&a.engineCreate, "dnnl_engine_create"},
		{&a.streamCreate, "dnnl_stream_create"},
		{&a.mdInitByStrides, "dnnl_memory_desc_init_by_strides"},
		{&a.mdInitByTag, "dnnl_memory_desc_init_by_tag"},
		{&a.matmulDescInit, "dnnl_matmul_desc_init"},
		{&a.attrCreate, "dnnl_primitive_attr_create"},
		{&a.attrDestroy, "dnnl_primitive_attr_destroy"},
		{&a.attrSetOutputScales, "dnnl_primitive_attr_set_output_scales"},
		{&a.attrSetPostOps, "dnnl_primitive_attr_set_post_ops"},
		{&a.postOpsCreate, "dnnl_post_ops_create"},
		{&a.postOpsDestroy, "dnnl_post_ops_destroy"},
		{&a.postOpsAppendSum, "dnnl_post_ops_append_sum"},
		{&a.iterCreate, "dnnl_primitive_desc_iterator_create"},
		{&a.iterNext, "dnnl_primitive_desc_iterator_next"},
		{&a.iterFetch, "dnnl_primitive_desc_iterator_fetch"},
		{&a.iterDestroy, "dnnl_primitive_desc_iterator_destroy"},
		{&a.pdQuery, "dnnl_primitive_desc_query"},
		{&a.pdDestroy, "dnnl_primitive_desc_destroy"},
		{&a.primCreate, "dnnl_primitive_create"},
		{&a.primDestroy, "dnnl_primitive_destroy"},
		{&a.memCreate, "dnnl_memory_create"},
		{&a.memDestroy, "dnnl_memory_destroy"},
		{&a.memGetDataHandle, "dnnl_memory_get_data_handle"},
	}, []dnnlSymbol{
		{&a.setHandle, "dnnl_memory_set_data_handle"},
		{&a.execute, "dnnl_primitive_execute"},
		{&a.wait, "dnnl_stream_wait"},
	}); err != nil {
		return nil, err
	}
	if e.eng, e.stream, err = newEngineStream(a.engineCreate, a.streamCreate); err != nil {
		return nil, err
	}
	return e, nil
}

// matrixDesc fills a row-major f32 descriptor of the rows x cols matrix
// op(X) for X stored with leading dimension ld: op(X) = X^T is the same
// memory read with the strides swapped.
func (e *dnnlMatmul) matrixDesc(md *memDesc, rows, cols, ld int, trans bool) error {
	dims := [2]int64{int64(rows), int64(cols)}
	strides := [2]int64{int64(ld), 1}
	if trans {
		strides = [2]int64{1, int64(ld)}
	}
	return dnnlErr("dnnl_memory_desc_init_by_strides", e.api.mdInitByStrides(md.ptr(), 2, unsafe.Pointer(&dims[0]), dnnlF32, unsafe.Pointer(&strides[0])))
}

// mem creates a memory object for md (handle as dnnlConvEngine.mem).
func (e *dnnlMatmul) mem(p *matmulPrim, md *memDesc, handle uintptr) (uintptr, error) {
	var m uintptr
	if err := dnnlErr("dnnl_memory_create", e.api.memCreate(unsafe.Pointer(&m), md.ptr(), e.eng, handle)); err != nil {
		return 0, err
	}
	p.owned = append(p.owned, m)
	return m, nil
}

// destroy releases what p holds, keeping its name and error.
func (e *dnnlMatmul) destroy(p *matmulPrim) {
	if p.prim != 0 {
		e.api.primDestroy(p.prim)
	}
	for _, m := range p.owned {
		e.api.memDestroy(m)
	}
	*p = matmulPrim{impl: p.impl, err: p.err}
}

// build makes the matmul primitive for k: src op(A) (m x k), weights
// op(B) (k x n), dst C (m x n), each a strided view of the caller's
// row-major matrix; alpha as a run-time output scale when k.scaled, C
// added back by a sum post-op (scale 1) when k.sum.
func (e *dnnlMatmul) build(p *matmulPrim, k matmulKey) error {
	a := &e.api
	var srcMD, wMD, dstMD, scaleMD memDesc
	if err := e.matrixDesc(&srcMD, k.m, k.k, k.lda, k.transA); err != nil {
		return err
	}
	if err := e.matrixDesc(&wMD, k.k, k.n, k.ldb, k.transB); err != nil {
		return err
	}
	if err := e.matrixDesc(&dstMD, k.m, k.n, k.ldc, false); err != nil {
		return err
	}
	desc := make([]uint64, dnnlMatmulDescSize/8)
	if err := dnnlErr("dnnl_matmul_desc_init", a.matmulDescInit(unsafe.Pointer(&desc[0]), srcMD.ptr(), wMD.ptr(), nil, dstMD.ptr())); err != nil {
		return err
	}
	var attr, po uintptr
	if err := dnnlErr("dnnl_primitive_attr_create", a.attrCreate(unsafe.Pointer(&attr))); err != nil {
		return err
	}
	defer a.attrDestroy(attr)
	if k.scaled {
		if err := dnnlErr("dnnl_primitive_attr_set_output_scales", a.attrSetOutputScales(attr, 1, 0, unsafe.Pointer(&dnnlRuntimeF32Val[0]))); err != nil {
			return err
		}
	}
	if k.sum {
		if err := dnnlErr("dnnl_post_ops_create", a.postOpsCreate(unsafe.Pointer(&po))); err != nil {
			return err
		}
		defer a.postOpsDestroy(po)
		if err := dnnlErr("dnnl_post_ops_append_sum", a.postOpsAppendSum(po, 1)); err != nil {
			return err
		}
		if err := dnnlErr("dnnl_primitive_attr_set_post_ops", a.attrSetPostOps(attr, po)); err != nil {
			return err
		}
	}
	pd, impl, err := e.choose(unsafe.Pointer(&desc[0]), attr)
	if err != nil {
		return err
	}
	defer a.pdDestroy(pd)
	p.impl = impl
	if err := dnnlErr("dnnl_primitive_create (matmul)", a.primCreate(unsafe.Pointer(&p.prim), pd)); err != nil {
		return err
	}
	if p.a, err = e.mem(p, &srcMD, 0); err != nil {
		return err
	}
	if p.b, err = e.mem(p, &wMD, 0); err != nil {
		return err
	}
	if p.c, err = e.mem(p, &dstMD, 0); err != nil {
		return err
	}
	p.args[0] = execArg{arg: dnnlArgSrc, mem: p.a}
	p.args[1] = execArg{arg: dnnlArgWeights, mem: p.b}
	p.args[2] = execArg{arg: dnnlArgDst, mem: p.c}
	p.nargs = 3
	if k.scaled {
		one := [1]int64{1}
		if err := dnnlErr("dnnl_memory_desc_init_by_tag", a.mdInitByTag(scaleMD.ptr(), 1, unsafe.Pointer(&one[0]), dnnlF32, dnnlTagA)); err != nil {
			return err
		}
		if p.alpha, err = e.mem(p, &scaleMD, dnnlMemoryAllocate); err != nil {
			return err
		}
		var h unsafe.Pointer
		if err := dnnlErr("dnnl_memory_get_data_handle", a.memGetDataHandle(p.alpha, unsafe.Pointer(&h))); err != nil {
			return err
		}
		if h == nil {
			return fmt.Errorf("compute: oneDNN allocated no buffer for the matmul's output scale")
		}
		p.alphaVal = (*float32)(h)
		p.args[3] = execArg{arg: dnnlArgAttrOutputScales, mem: p.alpha}
		p.nargs = 4
	}
	return nil
}

// choose walks the implementations oneDNN offers for a matmul descriptor
// (best first, by oneDNN's ranking) and returns the primitive descriptor of
// the first GEMM-based one ("gemm:jit": the kernels dnnl_sgemm runs), else
// of oneDNN's first choice; never its reference loops, far slower than any
// GEMM. On a Zen 5 EPYC with oneDNN 2.6.3 (2 threads, 2026-11-30) oneDNN's
// first float32 choice, brg:avx512_core, took 1.0-1.3x gemm:jit's time on
// ResNet and Faster R-CNN shapes (64x3136x576: 778 us against 595,
// 1024x256x2304: 3686 against 3100) and 2.8x on a matrix-vector product,
// and was never more than 2% faster; gemm:jit ran within 1-2% of
// dnnl_sgemm on every shape.
func (e *dnnlMatmul) choose(desc unsafe.Pointer, attr uintptr) (pd uintptr, impl string, err error) {
	a := &e.api
	var it uintptr
	if err := dnnlErr("dnnl_primitive_desc_iterator_create (matmul)", a.iterCreate(unsafe.Pointer(&it), desc, attr, e.eng, 0)); err != nil {
		return 0, "", err
	}
	defer a.iterDestroy(it)
	var names []string
	for {
		cand := a.iterFetch(it)
		if cand == 0 {
			return 0, "", fmt.Errorf("compute: dnnl_primitive_desc_iterator_fetch (matmul) returned NULL")
		}
		name := "unnamed"
		var s *byte
		if st := a.pdQuery(cand, dnnlQueryImplInfo, 0, unsafe.Pointer(&s)); st == 0 && s != nil {
			name = cString(s)
		}
		names = append(names, name)
		switch {
		case strings.HasPrefix(name, "gemm"):
			if pd != 0 {
				a.pdDestroy(pd)
			}
			return cand, name, nil
		case pd == 0 && !strings.HasPrefix(name, "ref"):
			pd, impl = cand, name
		default:
			a.pdDestroy(cand)
		}
		if st := a.iterNext(it); st != 0 {
			// dnnl_iterator_ends: nothing better than pd.
			break
		}
	}
	if pd == 0 {
		return 0, "", fmt.Errorf("compute: oneDNN offers only reference implementations of this matmul (%s)", strings.Join(names, ", "))
	}
	return pd, impl, nil
}

// primLocked returns the cached primitive for k, making it on first use; a
// shape oneDNN refuses is cached too, with its error. e.mu is held.
func (e *dnnlMatmul) primLocked(k matmulKey) *matmulPrim {
	if p, ok := e.cache[k]; ok {
		return p
	}
	p := &matmulPrim{}
	if err := e.build(p, k); err != nil {
		e.destroy(p)
		p.err = err
	}
	if len(e.order) >= e.limit {
		old := e.order[0]
		e.order = e.order[1:]
		e.destroy(e.cache[old])
		delete(e.cache, old)
	}
	e.cache[k] = p
	e.order = append(e.order, k)
	return p
}

// setHandle points memory object m at v's first element; e.mu is held
// and the caller keeps v alive until clearHandle.
func (e *dnnlMatmul) setHandle(m uintptr, v []float32) error {
	return dnnlErr("dnnl_memory_set_data_handle", dnnlCall(e.api.setHandle, &e.callArgs, 2, m, uintptr(unsafe.Pointer(&v[0])), 0, 0))
}

// clearHandle drops the pointer to Go memory that m holds; e.mu is held.
func (e *dnnlMatmul) clearHandle(m uintptr) {
	dnnlCall(e.api.setHandle, &e.callArgs, 2, m, 0, 0, 0)
}

// sgemm computes C = alpha*op(A)*op(B) + beta*C (Sgemm's contract, m, n
// and k > 0, alpha != 0) with oneDNN's matmul and reports whether it did:
// false when oneDNN refused the shape or offered only its reference
// implementation (the caller then runs the product elsewhere; C is
// untouched). Beta other than 0 and 1 scales C here first, so primitives
// are made for two betas only. A failing execution (the library out of
// memory, Sgemm's arguments having been checked) panics, as a Go
// allocation would.
func (e *dnnlMatmul) sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) bool {
	key := matmulKey{transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc, scaled: alpha != 1, sum: beta != 0}
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.primLocked(key)
	if p.err != nil {
		return false
	}
	if beta != 0 {
		scaleC(m, n, beta, c, ldc)
	}
	if p.alphaVal != nil {
		*p.alphaVal = alpha
	}
	// The memory objects point into a, b and c (Go memory, which the
	// garbage collector does not move) until the handles are cleared;
	// the KeepAlives keep the slices allocated that long. Every call
	// here is a dnnlCall, which allocates nothing.
	defer func() {
		e.clearHandle(p.a)
		e.clearHandle(p.b)
		e.clearHandle(p.c)
		runtime.KeepAlive(a)
		runtime.KeepAlive(b)
		runtime.KeepAlive(c)
	}()
	if err := e.setHandle(p.a, a); err != nil {
		panic(err.Error())
	}
	if err := e.setHandle(p.b, b); err != nil {
		panic(err.Error())
	}
	if err := e.setHandle(p.c, c); err != nil {
		panic(err.Error())
	}
	if st := dnnlCall(e.api.execute, &e.callArgs, 4, p.prim, e.stream, uintptr(p.nargs), uintptr(unsafe.Pointer(&p.args[0]))); st != 0 {
		panic(fmt.Sprintf("compute: dnnl_primitive_execute (matmul %dx%dx%d): %s", m, n, k, dnnlStatusName(st)))
	}
	if st := dnnlCall(e.api.wait, &e.callArgs, 1, e.stream, 0, 0, 0); st != 0 {
		panic(fmt.Sprintf("compute: dnnl_stream_wait (matmul %dx%dx%d): %s", m, n, k, dnnlStatusName(st)))
	}
	return true
}

// implOf returns the implementation oneDNN chose for a product shape
// (making its primitive), or the reason it has none; for tests and
// benchmark printouts.
func (e *dnnlMatmul) implOf(transA, transB bool, m, n, k, lda, ldb, ldc int, alpha, beta float32) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.primLocked(matmulKey{transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc, scaled: alpha != 1, sum: beta != 0})
	return p.impl, p.err
}
