//go:build (linux || darwin || freebsd) && (amd64 || arm64)

package compute

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// Sizes and enum values of oneDNN 2.x's C API (dnnl_types.h of 2.6.3,
// checked with a C program against libdnnl-dev; the v2 API is the same
// from 2.0 to 2.7). 3.x replaced the operation descriptors with opaque
// handles, so loadConvEngine refuses other major versions.
const (
	dnnlMemoryDescSize = 696  // sizeof(dnnl_memory_desc_t)
	dnnlConvDescSize   = 5976 // sizeof(dnnl_convolution_desc_t)

	dnnlBF16           = 2
	dnnlF32            = 3
	dnnlFormatAny      = 1
	dnnlTagA           = 2 // dnnl_x: a 1-D tensor
	dnnlTagABCD        = 5 // dnnl_nchw, dnnl_oihw
	dnnlCPU            = 1
	dnnlStreamDefault  = 1
	dnnlForwardInfer   = 96
	dnnlConvDirect     = 1
	dnnlBinaryAdd      = 0x1fff0
	dnnlBinaryMul      = 0x1fff1
	dnnlArgSrc         = 1
	dnnlArgDst         = 17
	dnnlArgWeights     = 33
	dnnlArgBias        = 41
	dnnlArgSrc1        = 2
	dnnlArgPostOpShift = 14 // DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) = (i+1) << 14
	dnnlQueryImplInfo  = 8
	dnnlQuerySrcMD     = 129
	dnnlQueryWeightsMD = 131
	dnnlQueryDstMD     = 133

	// convCacheSize bounds the cached primitives (each holds blocked
	// copies of its input, output and weights): ResNet18 at one input
	// size needs about 15, Faster R-CNN's varying image sizes more.
	convCacheSize = 96
)

// dnnlMemoryAllocate is DNNL_MEMORY_ALLOCATE, ((void *)(size_t)-1).
const dnnlMemoryAllocate = ^uintptr(0)

// memDesc is a dnnl_memory_desc_t, 8-byte aligned.
type memDesc [dnnlMemoryDescSize / 8]uint64

func (m *memDesc) ptr() unsafe.Pointer { return unsafe.Pointer(&m[0]) }

// execArg is a dnnl_exec_arg_t.
type execArg struct {
	arg int32
	_   int32
	mem uintptr
}

// dnnlConvAPI holds the 2.x C API that the convolution path calls.
// Handles are uintptr (C memory); pointers to Go memory are
// unsafe.Pointer, valid for the call only.
//
// What runs once per shape (descriptors, primitive creation) is bound
// with purego.RegisterLibFunc, whose reflect-based calls allocate on every
// call. What every convolution calls (setHandle, execute, wait: integer
// and pointer arguments only) is kept as the C function's address and
// called through purego.SyscallN by dnnlCall, which allocates nothing.
type dnnlConvAPI struct {
	// setHandle is dnnl_memory_set_data_handle(memory, void *handle),
	// execute dnnl_primitive_execute(primitive, stream, int nargs,
	// const dnnl_exec_arg_t *args), wait dnnl_stream_wait(stream); each
	// returns a dnnl_status_t.
	setHandle, execute, wait uintptr

	engineCreate     func(eng unsafe.Pointer, kind int32, index uintptr) int32
	streamCreate     func(st unsafe.Pointer, eng uintptr, flags uint32) int32
	mdInitByTag      func(md unsafe.Pointer, ndims int32, dims unsafe.Pointer, dt int32, tag int32) int32
	mdEqual          func(a, b unsafe.Pointer) int32
	mdGetSize        func(md unsafe.Pointer) uintptr
	convFwdDescInit  func(cd unsafe.Pointer, prop, alg int32, src, wei, bias, dst, strides, padL, padR unsafe.Pointer) int32
	attrCreate       func(attr unsafe.Pointer) int32
	attrDestroy      func(attr uintptr) int32
	attrSetPostOps   func(attr, po uintptr) int32
	postOpsCreate    func(po unsafe.Pointer) int32
	postOpsDestroy   func(po uintptr) int32
	postOpsAppendSum func(po uintptr, scale float32) int32
	postOpsAppendBin func(po uintptr, alg int32, src1 unsafe.Pointer) int32
	pdCreate         func(pd unsafe.Pointer, opDesc unsafe.Pointer, attr, eng, hint uintptr) int32
	pdQuery          func(pd uintptr, what, index int32, result unsafe.Pointer) int32
	pdQueryMD        func(pd uintptr, what, index int32) unsafe.Pointer
	pdDestroy        func(pd uintptr) int32
	reorderPDCreate  func(pd unsafe.Pointer, src unsafe.Pointer, srcEng uintptr, dst unsafe.Pointer, dstEng, attr uintptr) int32
	primCreate       func(p unsafe.Pointer, pd uintptr) int32
	primDestroy      func(p uintptr) int32
	memCreate        func(m unsafe.Pointer, md unsafe.Pointer, eng uintptr, handle uintptr) int32
	memDestroy       func(m uintptr) int32
}

// dnnlConvEngine is oneDNN's CPU engine and stream with the primitives
// created so far; mu serialises everything (primitives and their cached
// memory objects are reused between calls).
type dnnlConvEngine struct {
	api     dnnlConvAPI
	version string
	eng     uintptr
	stream  uintptr

	mu    sync.Mutex
	cache map[convKey]*convPrim
	order []convKey // oldest first, for eviction

	// callArgs is the argument list of the dnnlCall in progress (e.mu
	// held): part of the engine, so on the heap and reused.
	callArgs [4]uintptr
}

var convEngine = sync.OnceValues(func() (*dnnlConvEngine, error) { return openConvEngine() })

// loadConvEngine loads oneDNN (through compute's loader, which sets up its
// OpenMP threads) and binds its convolution API, once.
func loadConvEngine() (*dnnlConvEngine, error) { return convEngine() }

func openConvEngine() (e *dnnlConvEngine, err error) {
	defer func() {
		// purego panics when a symbol's signature cannot be bound.
		if r := recover(); r != nil {
			e, err = nil, fmt.Errorf("compute: binding oneDNN's convolutions: %v", r)
		}
	}()
	h, version, err := dnnlHandleV2("convolutions are")
	if err != nil {
		return nil, err
	}
	e = &dnnlConvEngine{cache: map[convKey]*convPrim{}}
	a := &e.api
	e.version = version
	if err := bindDNNL(h, []dnnlBinding{
		{&a.engineCreate, "dnnl_engine_create"},
		{&a.streamCreate, "dnnl_stream_create"},
		{&a.mdInitByTag, "dnnl_memory_desc_init_by_tag"},
		{&a.mdEqual, "dnnl_memory_desc_equal"},
		{&a.mdGetSize, "dnnl_memory_desc_get_size"},
		{&a.convFwdDescInit, "dnnl_convolution_forward_desc_init"},
		{&a.attrCreate, "dnnl_primitive_attr_create"},
		{&a.attrDestroy, "dnnl_primitive_attr_destroy"},
		{&a.attrSetPostOps, "dnnl_primitive_attr_set_post_ops"},
		{&a.postOpsCreate, "dnnl_post_ops_create"},
		{&a.postOpsDestroy, "dnnl_post_ops_destroy"},
		{&a.postOpsAppendSum, "dnnl_post_ops_append_sum"},
		{&a.postOpsAppendBin, "dnnl_post_ops_append_binary"},
		{&a.pdCreate, "dnnl_primitive_desc_create"},
		{&a.pdQuery, "dnnl_primitive_desc_query"},
		{&a.pdQueryMD, "dnnl_primitive_desc_query_md"},
		{&a.pdDestroy, "dnnl_primitive_desc_destroy"},
		{&a.reorderPDCreate, "dnnl_reorder_primitive_desc_create"},
		{&a.primCreate, "dnnl_primitive_create"},
		{&a.primDestroy, "dnnl_primitive_destroy"},
		{&a.memCreate, "dnnl_memory_create"},
		{&a.memDestroy, "dnnl_memory_destroy"},
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

// dnnlErr turns a failed status into an error naming the call.
func dnnlErr(call string, st int32) error {
	if st == 0 {
		return nil
	}
	return fmt.Errorf("compute: %s: %s", call, dnnlStatusName(st))
}

// convPrim is one cached convolution with the reorders and memory
// objects around it. Memories named u* wrap the caller's slices (their
// handles are set on every call); b* are oneDNN's own buffers in the
// layouts the convolution chose, or the u* ones when those are plain.
type convPrim struct {
	impl string // oneDNN's implementation name, e.g. "brgconv:avx512_core"
	err  error  // oneDNN refused the shape: callers run their own code

	conv                          uintptr
	srcRe, wRe, dstRe, resRe      uintptr // reorder primitives; 0 when none is needed
	uSrc, uW, uDst, uScale, uShft uintptr
	bSrc, bW, bDst                uintptr
	convArgs                      []execArg
	owned                         []uintptr // memories to destroy

	// The reorders' arguments (source, destination), made once by build
	// so that a call passes oneDNN Go memory that is already on the heap.
	srcReArgs, wReArgs, dstReArgs, resReArgs [2]execArg

	// The reordered weights live in Go memory (bW's handle is set on
	// every call): wBuf for a per-call reorder, or a cached OneDNNWeights
	// whose kind is wKind. wKind is "" when oneDNN takes the plain OIHW
	// weights (bW == uW).
	wKind  string
	wBytes int
	wBuf   []float32

	// cPad is the channel count the primitive was built for: s.C, or
	// s.C+1 for a bfloat16 one with odd s.C (bf16PaddedChannels), whose
	// input and weights are then copied into xPad and wPad (channel
	// s.C, never written, stays zero) before their reorders.
	cPad       int
	xPad, wPad []float32
}

// mdByTag fills a plain (or format_kind any) memory descriptor of data
// type dt (dnnlF32 or dnnlBF16).
func (e *dnnlConvEngine) mdByTag(md *memDesc, dt, tag int32, dims ...int64) error {
	return dnnlErr("dnnl_memory_desc_init_by_tag", e.api.mdInitByTag(md.ptr(), int32(len(dims)), unsafe.Pointer(&dims[0]), dt, tag))
}

// mem creates a memory object for md: handle dnnlMemoryAllocate lets
// oneDNN allocate it, 0 leaves it to be set before each use.
func (e *dnnlConvEngine) mem(p *convPrim, md unsafe.Pointer, handle uintptr) (uintptr, error) {
	var m uintptr
	if err := dnnlErr("dnnl_memory_create", e.api.memCreate(unsafe.Pointer(&m), md, e.eng, handle)); err != nil {
		return 0, err
	}
	p.owned = append(p.owned, m)
	return m, nil
}

// reorder creates a reorder primitive from one descriptor to another.
func (e *dnnlConvEngine) reorder(from, to unsafe.Pointer) (uintptr, error) {
	var pd, prim uintptr
	if err := dnnlErr("dnnl_reorder_primitive_desc_create", e.api.reorderPDCreate(unsafe.Pointer(&pd), from, e.eng, to, e.eng, 0)); err != nil {
		return 0, err
	}
	defer e.api.pdDestroy(pd)
	if err := dnnlErr("dnnl_primitive_create (reorder)", e.api.primCreate(unsafe.Pointer(&prim), pd)); err != nil {
		return 0, err
	}
	return prim, nil
}

// destroy releases everything p holds.
func (e *dnnlConvEngine) destroy(p *convPrim) {
	for _, prim := range []uintptr{p.conv, p.srcRe, p.wRe, p.dstRe, p.resRe} {
		if prim != 0 {
			e.api.primDestroy(prim)
		}
	}
	for _, m := range p.owned {
		e.api.memDestroy(m)
	}
	*p = convPrim{impl: p.impl, err: p.err}
}

// prim returns the cached primitive for k, creating it on first use; a
// shape oneDNN refuses is cached too (with its error). e.mu must not be
// held.
func (e *dnnlConvEngine) prim(k convKey) (*convPrim, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := e.primLocked(k)
	if err != nil {
		return nil, err
	}
	return p, p.err
}

func (e *dnnlConvEngine) primLocked(k convKey) (*convPrim, error) {
	if p, ok := e.cache[k]; ok {
		return p, nil
	}
	p := &convPrim{}
	if err := e.build(p, k); err != nil {
		e.destroy(p)
		p.err = err
	}
	if len(e.order) >= convCacheSize {
		old := e.order[0]
		e.order = e.order[1:]
		e.destroy(e.cache[old])
		delete(e.cache, old)
	}
	e.cache[k] = p
	e.order = append(e.order, k)
	return p, nil
}

// build creates the convolution for k, its post-ops (binary mul by Scale,
// binary add of Shift, or Shift as the bias without Scale; sum of the
// residual; ReLU), the memories and the reorders it needs.
//
// With k.s.BF16 the convolution's source and weights are bfloat16 (format
// any) while the caller's plain ones stay float32, so the reorders into
// the blocked layouts also round to bfloat16 (oneDNN's float-to-bfloat16
// conversion: nearest, ties to even); bias, post-op operands and the
// destination stay float32.
func (e *dnnlConvEngine) build(p *convPrim, k convKey) error {
	a := &e.api
	s := k.s
	opDT := int32(dnnlF32) // the product's operands (source and weights)
	if s.BF16 {
		opDT = dnnlBF16
	}
	// The channels oneDNN sees: one zero channel more for an odd count
	// in bfloat16 (bf16ChannelPad).
	p.cPad = bf16PaddedChannels(s)
	cp := int64(p.cPad)
	var srcPlain, wPlain, dstPlain, srcAny, wAny, dstAny, biasMD, chanMD memDesc
	for _, d := range []struct {
		md   *memDesc
		dt   int32
		tag  int32
		dims []int64
	}{
		{&srcPlain, dnnlF32, dnnlTagABCD, []int64{int64(s.N), cp, int64(s.H), int64(s.W)}},
		{&wPlain, dnnlF32, dnnlTagABCD, []int64{int64(s.K), cp, int64(s.KH), int64(s.KW)}},
		{&dstPlain, dnnlF32, dnnlTagABCD, []int64{int64(s.N), int64(s.K), int64(s.OH), int64(s.OW)}},
		{&srcAny, opDT, dnnlFormatAny, []int64{int64(s.N), cp, int64(s.H), int64(s.W)}},
		{&wAny, opDT, dnnlFormatAny, []int64{int64(s.K), cp, int64(s.KH), int64(s.KW)}},
		{&dstAny, dnnlF32, dnnlFormatAny, []int64{int64(s.N), int64(s.K), int64(s.OH), int64(s.OW)}},
		{&biasMD, dnnlF32, dnnlTagA, []int64{int64(s.K)}},
		{&chanMD, dnnlF32, dnnlTagABCD, []int64{1, int64(s.K), 1, 1}},
	} {
		if err := e.mdByTag(d.md, d.dt, d.tag, d.dims...); err != nil {
			return err
		}
	}
	strides := []int64{int64(s.SH), int64(s.SW)}
	padL := []int64{int64(s.PH), int64(s.PW)}
	// Right padding: what the last window needs beyond the input, which
	// oneDNN wants exact ((OH-1)*SH + KH - H - PH, possibly less than PH).
	padR := []int64{int64((s.OH-1)*s.SH + s.KH - s.H - s.PH), int64((s.OW-1)*s.SW + s.KW - s.W - s.PW)}
	bias := unsafe.Pointer(nil)
	useBias := k.shift && !k.scale
	if useBias {
		bias = biasMD.ptr()
	}
	cd := make([]uint64, dnnlConvDescSize/8)
	if err := dnnlErr("dnnl_convolution_forward_desc_init", a.convFwdDescInit(unsafe.Pointer(&cd[0]), dnnlForwardInfer, dnnlConvDirect,
		srcAny.ptr(), wAny.ptr(), bias, dstAny.ptr(), unsafe.Pointer(&strides[0]), unsafe.Pointer(&padL[0]), unsafe.Pointer(&padR[0]))); err != nil {
		return err
	}
	var attr, po uintptr
	if err := dnnlErr("dnnl_primitive_attr_create", a.attrCreate(unsafe.Pointer(&attr))); err != nil {
		return err
	}
	defer a.attrDestroy(attr)
	if err := dnnlErr("dnnl_post_ops_create", a.postOpsCreate(unsafe.Pointer(&po))); err != nil {
		return err
	}
	defer a.postOpsDestroy(po)
	nPost := 0
	var scaleArg, shiftArg int32
	if k.scale {
		if err := dnnlErr("dnnl_post_ops_append_binary (mul)", a.postOpsAppendBin(po, dnnlBinaryMul, chanMD.ptr())); err != nil {
			return err
		}
		scaleArg = int32(nPost+1)<<dnnlArgPostOpShift | dnnlArgSrc1
		nPost++
		if k.shift {
			if err := dnnlErr("dnnl_post_ops_append_binary (add)", a.postOpsAppendBin(po, dnnlBinaryAdd, chanMD.ptr())); err != nil {
				return err
			}
			shiftArg = int32(nPost+1)<<dnnlArgPostOpShift | dnnlArgSrc1
			nPost++
		}
	}
	if k.res {
		if err := dnnlErr("dnnl_post_ops_append_sum", a.postOpsAppendSum(po, 1)); err != nil {
			return err
		}
		nPost++
	}
	// No ReLU post-op: oneDNN's is vmaxps(v, 0), which turns NaN into 0
	// (a NaN weight would vanish from the forward pass), and with a
	// nonzero slope it leaves -|v|*slope. run applies ReLU to the NCHW
	// output instead (reluInPlace), exactly as the Go epilogue does.
	if err := dnnlErr("dnnl_primitive_attr_set_post_ops", a.attrSetPostOps(attr, po)); err != nil {
		return err
	}
	var pd uintptr
	if err := dnnlErr("dnnl_primitive_desc_create (convolution)", a.pdCreate(unsafe.Pointer(&pd), unsafe.Pointer(&cd[0]), attr, e.eng, 0)); err != nil {
		return err
	}
	defer a.pdDestroy(pd)
	var impl *byte
	if st := a.pdQuery(pd, dnnlQueryImplInfo, 0, unsafe.Pointer(&impl)); st == 0 && impl != nil {
		p.impl = cString(impl)
	}
	// Copies of the chosen layouts (the pointers live as long as pd).
	var srcMD, wMD, dstMD memDesc
	for _, q := range []struct {
		md   *memDesc
		what int32
	}{{&srcMD, dnnlQuerySrcMD}, {&wMD, dnnlQueryWeightsMD}, {&dstMD, dnnlQueryDstMD}} {
		ptr := a.pdQueryMD(pd, q.what, 0)
		if ptr == nil {
			return fmt.Errorf("compute: oneDNN's convolution reports no memory descriptor for query %d", q.what)
		}
		copy(q.md[:], unsafe.Slice((*uint64)(ptr), len(q.md)))
	}
	p.wBytes = int(a.mdGetSize(wMD.ptr()))
	if err := dnnlErr("dnnl_primitive_create (convolution)", a.primCreate(unsafe.Pointer(&p.conv), pd)); err != nil {
		return err
	}
	var err error
	// User memories: handles set per call.
	if p.uSrc, err = e.mem(p, srcPlain.ptr(), 0); err != nil {
		return err
	}
	if p.uW, err = e.mem(p, wPlain.ptr(), 0); err != nil {
		return err
	}
	if p.uDst, err = e.mem(p, dstPlain.ptr(), 0); err != nil {
		return err
	}
	// Internal memories where the layout differs.
	for _, m := range []struct {
		user   uintptr
		plain  *memDesc
		chosen *memDesc
		buf    *uintptr
		re     *uintptr
		toUser bool
	}{
		{p.uSrc, &srcPlain, &srcMD, &p.bSrc, &p.srcRe, false},
		{p.uW, &wPlain, &wMD, &p.bW, &p.wRe, false},
		{p.uDst, &dstPlain, &dstMD, &p.bDst, &p.dstRe, true},
	} {
		if a.mdEqual(m.plain.ptr(), m.chosen.ptr()) != 0 {
			*m.buf = m.user
			continue
		}
		handle := dnnlMemoryAllocate
		if m.buf == &p.bW {
			handle = 0 // Go memory, set per call
			p.wKind = weightsKind(&wMD)
		}
		if *m.buf, err = e.mem(p, m.chosen.ptr(), handle); err != nil {
			return err
		}
		from, to := m.plain.ptr(), m.chosen.ptr()
		if m.toUser {
			from, to = to, from
		}
		if *m.re, err = e.reorder(from, to); err != nil {
			return err
		}
	}
	if k.res && p.bDst != p.uDst {
		// The residual is reordered into the blocked output, which the
		// sum post-op then reads.
		if p.resRe, err = e.reorder(dstPlain.ptr(), dstMD.ptr()); err != nil {
			return err
		}
	}
	p.srcReArgs = [2]execArg{{arg: dnnlArgSrc, mem: p.uSrc}, {arg: dnnlArgDst, mem: p.bSrc}}
	p.wReArgs = [2]execArg{{arg: dnnlArgSrc, mem: p.uW}, {arg: dnnlArgDst, mem: p.bW}}
	p.dstReArgs = [2]execArg{{arg: dnnlArgSrc, mem: p.bDst}, {arg: dnnlArgDst, mem: p.uDst}}
	p.resReArgs = [2]execArg{{arg: dnnlArgSrc, mem: p.uDst}, {arg: dnnlArgDst, mem: p.bDst}}
	p.convArgs = []execArg{{arg: dnnlArgSrc, mem: p.bSrc}, {arg: dnnlArgWeights, mem: p.bW}, {arg: dnnlArgDst, mem: p.bDst}}
	if useBias {
		if p.uShft, err = e.mem(p, biasMD.ptr(), 0); err != nil {
			return err
		}
		p.convArgs = append(p.convArgs, execArg{arg: dnnlArgBias, mem: p.uShft})
	}
	if k.scale {
		if p.uScale, err = e.mem(p, chanMD.ptr(), 0); err != nil {
			return err
		}
		p.convArgs = append(p.convArgs, execArg{arg: scaleArg, mem: p.uScale})
		if k.shift {
			if p.uShft, err = e.mem(p, chanMD.ptr(), 0); err != nil {
				return err
			}
			p.convArgs = append(p.convArgs, execArg{arg: shiftArg, mem: p.uShft})
		}
	}
	return nil
}

// weightsKind names a weights layout: oneDNN's descriptor bytes, hashed
// (FNV-1a). Descriptors are zero-filled before oneDNN writes them, so
// equal layouts hash equally.
func weightsKind(md *memDesc) string {
	h := uint64(14695981039346656037)
	for _, v := range md {
		for i := 0; i < 8; i++ {
			h ^= v >> (8 * i) & 0xff
			h *= 1099511628211
		}
	}
	return fmt.Sprintf("onednn/conv-weights-%016x", h)
}

// alignedFloats returns n float32s starting on a 64-byte boundary (the
// alignment oneDNN gives its own buffers).
func alignedFloats(n int) []float32 {
	buf := make([]float32, n+16)
	off := int(uintptr(unsafe.Pointer(&buf[0]))%64) / 4
	if off != 0 {
		off = 16 - off
	}
	return buf[off : off+n : off+n]
}

// OneDNNWeights are a convolution's weights reordered into the blocked
// layout oneDNN's convolution primitive wants (and, for a ConvShape.BF16
// convolution, rounded to bfloat16), made by NewOneDNNWeights for
// ConvOneDNNPrepared: callers keep them while the weights are unchanged
// (nn keeps them in the parameter's WeightCache) and skip the reorder on
// every call. They are Go memory; nothing needs freeing.
type OneDNNWeights struct {
	kind string
	data []float32
}

// DerivedBytes reports the memory the weights hold.
func (w *OneDNNWeights) DerivedBytes() int64 { return int64(len(w.data)) * 4 }

// Kind names the layout, as ConvOneDNNWeightsKind does.
func (w *OneDNNWeights) Kind() string { return w.kind }

// weightsKind returns the layout key for s and ep; "" when oneDNN takes
// plain weights, and use false when ConvOneDNN would not run the call.
func (e *dnnlConvEngine) weightsKind(s ConvShape, ep Epilogue, force bool) (kind string, use bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := e.primLocked(convKeyOf(s, ep))
	if err != nil || p.err != nil || (!force && !autoUses(s, p.impl, ep)) {
		return "", false
	}
	return p.wKind, true
}

// newWeights reorders w for the primitive of s and ep.
func (e *dnnlConvEngine) newWeights(s ConvShape, ep Epilogue, w []float32) (*OneDNNWeights, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := e.primLocked(convKeyOf(s, ep))
	if err != nil {
		return nil, err
	}
	if p.err != nil {
		return nil, p.err
	}
	if p.wRe == 0 {
		return nil, fmt.Errorf("compute: oneDNN's convolution for %+v reads plain weights: nothing to reorder", s)
	}
	ow := &OneDNNWeights{kind: p.wKind, data: alignedFloats((p.wBytes + 3) / 4)}
	if err := e.reorderWeights(p, p.paddedWeights(s, w), ow.data); err != nil {
		return nil, err
	}
	return ow, nil
}

// paddedWeights returns w (K,C,KH,KW) as the primitive reads it: w
// itself, or copied into p.wPad with the zero channel bf16PaddedChannels
// adds. e.mu is held.
func (p *convPrim) paddedWeights(s ConvShape, w []float32) []float32 {
	if p.cPad == s.C {
		return w
	}
	if p.wPad == nil {
		p.wPad = make([]float32, s.K*p.cPad*s.KH*s.KW)
	}
	padChannels(p.wPad, w, s.K, s.C, p.cPad, s.KH*s.KW)
	return p.wPad
}

// paddedInput is paddedWeights for the input x (N,C,H,W).
func (p *convPrim) paddedInput(s ConvShape, x []float32) []float32 {
	if p.cPad == s.C {
		return x
	}
	if p.xPad == nil {
		p.xPad = make([]float32, s.N*p.cPad*s.H*s.W)
	}
	padChannels(p.xPad, x, s.N, s.C, p.cPad, s.H*s.W)
	return p.xPad
}

// reorderWeights runs p's weights reorder from w (already padded:
// paddedWeights) into dst; e.mu is held.
func (e *dnnlConvEngine) reorderWeights(p *convPrim, w, dst []float32) error {
	defer func() {
		e.clearHandle(p.uW)
		e.clearHandle(p.bW)
		runtime.KeepAlive(w)
		runtime.KeepAlive(dst)
	}()
	if err := e.setHandle(p.uW, w); err != nil {
		return err
	}
	if err := e.setHandle(p.bW, dst); err != nil {
		return err
	}
	if err := e.execute("weights reorder", p.wRe, p.wReArgs[:]); err != nil {
		return err
	}
	return e.wait()
}

// cString copies a NUL-terminated C string.
func cString(p *byte) string {
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// run executes the convolution for s (already checked): reorders in, the
// convolution with its post-ops, the reorder out. In auto mode (force
// false) it returns false when oneDNN picked a reference or GEMM-based
// implementation, or refused the shape.
func (e *dnnlConvEngine) run(s ConvShape, x, w []float32, pw *OneDNNWeights, ep Epilogue, y []float32, force bool) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := e.primLocked(convKeyOf(s, ep))
	if err != nil {
		return false, err
	}
	if p.err != nil || (!force && !autoUses(s, p.impl, ep)) {
		return false, nil
	}
	// The memory objects point into x, w, y, pw and ep's slices (Go
	// memory, which the garbage collector does not move) from here until
	// the handles are cleared below; the KeepAlives at the end keep them
	// allocated that long. Every call below is a dnnlCall, which
	// allocates nothing.
	for _, h := range [...]struct {
		m uintptr
		v []float32
	}{{p.uSrc, p.paddedInput(s, x)}, {p.uW, w}, {p.uDst, y}, {p.uScale, ep.Scale}, {p.uShft, ep.Shift}} {
		if h.m != 0 {
			if err := e.setHandle(h.m, h.v); err != nil {
				return false, err
			}
		}
	}
	defer func() {
		// Drop the pointers to Go memory the memory objects still hold,
		// on success and failure alike.
		for _, m := range [...]uintptr{p.uSrc, p.uW, p.uDst, p.uScale, p.uShft} {
			if m != 0 {
				e.clearHandle(m)
			}
		}
		if p.wRe != 0 {
			e.clearHandle(p.bW)
		}
		runtime.KeepAlive(x)
		runtime.KeepAlive(w)
		runtime.KeepAlive(y)
		runtime.KeepAlive(pw)
		runtime.KeepAlive(ep.Scale)
		runtime.KeepAlive(ep.Shift)
		runtime.KeepAlive(ep.Residual)
	}()
	if ep.Residual != nil {
		if p.resRe == 0 {
			// The output is plain NCHW: the sum post-op reads y.
			copy(y[:s.N*s.K*s.OH*s.OW], ep.Residual)
		} else {
			// The residual has y's shape: uDst wraps it for the
			// reorder, then points back at y.
			if err := e.setHandle(p.uDst, ep.Residual); err != nil {
				return false, err
			}
			if err := e.execute("residual reorder", p.resRe, p.resReArgs[:]); err != nil {
				return false, err
			}
			if err := e.wait(); err != nil {
				return false, err
			}
			if err := e.setHandle(p.uDst, y); err != nil {
				return false, err
			}
		}
	}
	if p.srcRe != 0 {
		if err := e.execute("input reorder", p.srcRe, p.srcReArgs[:]); err != nil {
			return false, err
		}
	}
	if p.wRe != 0 {
		if pw != nil && pw.kind == p.wKind && len(pw.data)*4 >= p.wBytes {
			if err := e.setHandle(p.bW, pw.data); err != nil {
				return false, err
			}
		} else {
			if p.wBuf == nil {
				p.wBuf = alignedFloats((p.wBytes + 3) / 4)
			}
			if err := e.setHandle(p.bW, p.wBuf); err != nil {
				return false, err
			}
			if p.cPad != s.C {
				if err := e.setHandle(p.uW, p.paddedWeights(s, w)); err != nil {
					return false, err
				}
			}
			if err := e.execute("weights reorder", p.wRe, p.wReArgs[:]); err != nil {
				return false, err
			}
		}
	}
	if err := e.execute("convolution", p.conv, p.convArgs); err != nil {
		return false, err
	}
	if p.dstRe != 0 {
		if err := e.execute("output reorder", p.dstRe, p.dstReArgs[:]); err != nil {
			return false, err
		}
	}
	if err := e.wait(); err != nil {
		return false, err
	}
	if ep.ReLU {
		reluInPlace(y[:s.N*s.K*s.OH*s.OW])
	}
	return true, nil
}
