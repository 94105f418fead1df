//go:build (linux || darwin || freebsd) && (amd64 || arm64)

package compute

// The oneDNN calls every convolution makes, without allocating: see
// dnnlConvAPI for which calls go this way.

import (
	"fmt"
	"unsafe"

	"github.com/ebitengine/purego"
)

// dnnlCall calls the C function at fn with the first n of a0..a3 through
// purego.SyscallN and returns its dnnl_status_t. The list goes in args (an
// engine's callArgs, e.mu held) rather than a variadic call: SyscallN is
// //go:uintptrescapes, which makes the compiler put a call's "..." list on
// the heap, one allocation a call.
//
// dnnlCall is //go:uintptrescapes too: an argument that is Go memory must
// be converted from its pointer in the call expression (unsafe.Pointer
// rule 4), which puts the object on the heap (where it does not move)
// and keeps it alive until the call returns. A handle oneDNN keeps past
// the call (dnnl_memory_set_data_handle) must be kept alive by the caller
// until it is reset.
//
//go:uintptrescapes
func dnnlCall(fn uintptr, args *[4]uintptr, n int, a0, a1, a2, a3 uintptr) int32 {
	*args = [4]uintptr{a0, a1, a2, a3}
	r1, _, _ := purego.SyscallN(fn, args[:n]...)
	*args = [4]uintptr{}
	// dnnl_status_t is a C int: the low 32 bits of the return register.
	return int32(r1)
}

// setHandle points memory object m at v's first element; e.mu is held. v
// is Go memory that oneDNN keeps: the caller keeps it alive until
// clearHandle (run and reorderWeights do, to their end).
func (e *dnnlConvEngine) setHandle(m uintptr, v []float32) error {
	return dnnlErr("dnnl_memory_set_data_handle", dnnlCall(e.api.setHandle, &e.callArgs, 2, m, uintptr(unsafe.Pointer(&v[0])), 0, 0))
}

// clearHandle drops the pointer to Go memory that m holds; e.mu is held.
func (e *dnnlConvEngine) clearHandle(m uintptr) error {
	return dnnlErr("dnnl_memory_set_data_handle", dnnlCall(e.api.setHandle, &e.callArgs, 2, m, 0, 0, 0))
}

// execute runs primitive prim on the engine's stream with args (Go memory
// that must stay alive: a convPrim's fields); e.mu is held. what names the
// primitive in the error.
func (e *dnnlConvEngine) execute(what string, prim uintptr, args []execArg) error {
	st := dnnlCall(e.api.execute, &e.callArgs, 4, prim, e.stream, uintptr(len(args)), uintptr(unsafe.Pointer(&args[0])))
	if st != 0 {
		// Built here: a message concatenated before the call would
		// allocate on every call.
		return fmt.Errorf("compute: dnnl_primitive_execute (%s): %s", what, dnnlStatusName(st))
	}
	return nil
}

// wait waits for the engine's stream to finish; e.mu is held.
func (e *dnnlConvEngine) wait() error {
	return dnnlErr("dnnl_stream_wait", dnnlCall(e.api.wait, &e.callArgs, 1, e.stream, 0, 0, 0))
}

// dnnlBinding is a oneDNN function bound by reflection (fn points to a Go
// func variable): setup-time calls, made once per shape.
type dnnlBinding struct {
	fn   any
	name string
}

// dnnlSymbol is a oneDNN function called through dnnlCall (fn receives
// its address): the calls made on every product or convolution.
type dnnlSymbol struct {
	fn   *uintptr
	name string
}

// bindDNNL binds fns with purego.RegisterLibFunc and looks syms up in the
// library h, failing with the first function it lacks.
func bindDNNL(h uintptr, fns []dnnlBinding, syms []dnnlSymbol) error {
	for _, f := range fns {
		if _, err := purego.Dlsym(h, f.name); err != nil {
			return fmt.Errorf("compute: oneDNN lacks %s: %w", f.name, err)
		}
		purego.RegisterLibFunc(f.fn, h, f.name)
	}
	for _, f := range syms {
		var err error
		if *f.fn, err = purego.Dlsym(h, f.name); err != nil {
			return fmt.Errorf("compute: oneDNN lacks %s: %w", f.name, err)
		}
	}
	return nil
}

// newEngineStream creates a CPU engine and a stream on it with the bound
// dnnl_engine_create and dnnl_stream_create.
func newEngineStream(engineCreate func(eng unsafe.Pointer, kind int32, index uintptr) int32,
	streamCreate func(st unsafe.Pointer, eng uintptr, flags uint32) int32) (eng, stream uintptr, err error) {
	if st := engineCreate(unsafe.Pointer(&eng), dnnlCPU, 0); st != 0 {
		return 0, 0, fmt.Errorf("compute: dnnl_engine_create: %s", dnnlStatusName(st))
	}
	if st := streamCreate(unsafe.Pointer(&stream), eng, dnnlStreamDefault); st != 0 {
		return 0, 0, fmt.Errorf("compute: dnnl_stream_create: %s", dnnlStatusName(st))
	}
	return eng, stream, nil
}
