//go:build (linux || darwin || freebsd) && (amd64 || arm64)

package compute

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"strings"
	"testing"
)

// convAllocCase is one steady-state ConvOneDNN call: a shape, the
// epilogue parts present, and whether the weights come prepared.
type convAllocCase struct {
	name     string
	s        ConvShape
	scale    bool // Scale and Shift (a folded BatchNorm)
	shift    bool // Shift alone: the primitive's bias
	res      bool
	relu     bool
	prepared bool
}

// convAllocCases cover float32 and bfloat16, every epilogue path of run
// (bias, binary post-ops, the residual's reorder or copy, ReLU), an odd
// channel count in bfloat16 (the zero-channel copies), a 1x1 and a
// strided convolution, a batch, and prepared weights.
func convAllocCases() []convAllocCase {
	bf := func(s ConvShape) ConvShape { s.BF16 = true; return s }
	c3 := convShapeOf(1, 16, 12, 12, 32, 3, 3, 1, 1, 1, 1)
	return []convAllocCase{
		{name: "f32_plain", s: c3},
		{name: "f32_bias", s: c3, shift: true},
		{name: "f32_bn_res_relu", s: c3, scale: true, shift: true, res: true, relu: true},
		{name: "f32_1x1_s2_batch2", s: convShapeOf(2, 32, 9, 9, 16, 1, 1, 2, 2, 0, 0), scale: true, shift: true},
		{name: "f32_prepared", s: c3, scale: true, shift: true, relu: true, prepared: true},
		{name: "bf16_plain", s: bf(c3)},
		{name: "bf16_bn_res_relu", s: bf(c3), scale: true, shift: true, res: true, relu: true},
		{name: "bf16_odd_channels", s: bf(convShapeOf(1, 3, 20, 20, 8, 7, 7, 2, 2, 3, 3)), shift: true},
		{name: "bf16_prepared", s: bf(c3), scale: true, shift: true, prepared: true},
		{name: "bf16_odd_channels_prepared", s: bf(convShapeOf(1, 3, 20, 20, 8, 7, 7, 2, 2, 3, 3)), shift: true, prepared: true},
	}
}

// convAllocFixture is a case's operands, its prepared weights (nil when
// not asked for) and a float64 reference for the output.
type convAllocFixture struct {
	x, w, y []float32
	ep      Epilogue
	pw      *OneDNNWeights
	want    []float32
}

func newConvAllocFixture(t *testing.T, e *dnnlConvEngine, tc convAllocCase, rng *rand.Rand) convAllocFixture {
	t.Helper()
	s := tc.s
	f := convAllocFixture{
		x: randSlice(rng, s.N*s.C*s.H*s.W),
		w: randSlice(rng, s.K*s.C*s.KH*s.KW),
		y: make([]float32, s.N*s.K*s.OH*s.OW),
	}
	if tc.scale {
		f.ep.Scale = randSlice(rng, s.K)
	}
	if tc.shift {
		f.ep.Shift = randSlice(rng, s.K)
	}
	if tc.res {
		f.ep.Residual = randSlice(rng, len(f.y))
	}
	f.ep.ReLU = tc.relu
	if tc.prepared {
		pw, err := e.newWeights(s, f.ep, f.w)
		if err != nil {
			t.Skipf("no weights to prepare: %v", err)
		}
		f.pw = pw
	}
	x, w := f.x, f.w
	if s.BF16 {
		// The products of bfloat16-rounded operands are exact in
		// float32: only the sums' roundings differ from the reference.
		x, w = roundedCopy(x), roundedCopy(w)
	}
	f.want = convRef(s, x, w, f.ep)
	return f
}

// TestConvOneDNNCallAllocatesNothing checks that a steady-state
// ConvOneDNNPrepared call (cached primitive; float32 and bfloat16; with
// prepared weights and without) allocates nothing on the Go heap, and
// still computes the convolution. Measured on a Zen 5 EPYC with
// libdnnl 2.6.3 (2026-11-30): 58-88 allocations per call (1.4 KiB for the
// plain 3x3, BenchmarkConvOneDNNCall) when dnnl_memory_set_data_handle,
// dnnl_primitive_execute and dnnl_stream_wait were bound with
// purego.RegisterLibFunc and the reorders' argument lists were built per
// call; 0 through dnnlCall (the benchmark's 12-14 B/op are SyscallN's
// pool refills after collections).
func TestConvOneDNNCallAllocatesNothing(t *testing.T) {
	if openblasRace {
		t.Skip("allocation counts under the race detector include its sync.Pool drops")
	}
	e := loadedConvEngine(t)
	defer SetConvChoice("onednn")()
	rng := rand.New(rand.NewSource(11))
	for _, tc := range convAllocCases() {
		t.Run(tc.name, func(t *testing.T) {
			f := newConvAllocFixture(t, e, tc, rng)
			call := func() {
				if ran, err := ConvOneDNNPrepared(tc.s, f.x, f.w, f.pw, f.ep, f.y); !ran || err != nil {
					t.Fatalf("ConvOneDNNPrepared(%+v): ran %v, err %v", tc.s, ran, err)
				}
			}
			call() // the primitive and its buffers are made here
			n := testing.AllocsPerRun(100, call)
			checkConvOutput(t, f.y, f.want, 1e-4)
			if n != 0 {
				t.Fatalf("a steady-state ConvOneDNNPrepared (%+v, prepared %v) allocated %.1f times per call, want 0", tc.s, tc.prepared, n)
			}
		})
	}
}

// checkConvOutput fails at the first output off the reference by more
// than tol*(1+|want|).
func checkConvOutput(t *testing.T, y, want []float32, tol float64) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(y[i] - want[i])); !(d <= tol*(1+math.Abs(float64(want[i])))) {
			t.Fatalf("y[%d] = %v, want %v", i, y[i], want[i])
		}
	}
}

// TestConvOneDNNAllocationsAfterCollection measures what calls allocate
// right after a garbage collection: purego.SyscallN keeps its own
// argument block in a sync.Pool, whose per-P cache the runtime drops at
// each collection and remakes at the next Get. That is a few allocations
// per collection, never per call (a call makes about ten foreign calls).
func TestConvOneDNNAllocationsAfterCollection(t *testing.T) {
	if openblasRace {
		t.Skip("allocation counts under the race detector include its sync.Pool drops")
	}
	e := loadedConvEngine(t)
	defer SetConvChoice("onednn")()
	tc := convAllocCases()[2] // float32, BatchNorm, residual, ReLU: every reorder
	f := newConvAllocFixture(t, e, tc, rand.New(rand.NewSource(5)))
	call := func() {
		if ran, err := ConvOneDNNPrepared(tc.s, f.x, f.w, nil, f.ep, f.y); !ran || err != nil {
			t.Fatalf("ConvOneDNNPrepared(%+v): ran %v, err %v", tc.s, ran, err)
		}
	}
	call()
	const rounds, calls = 10, 50
	var inGC uint64
	for range rounds {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		for range calls {
			call()
		}
		runtime.ReadMemStats(&m1)
		inGC += m1.Mallocs - m0.Mallocs
	}
	perCollection := float64(inGC) / rounds
	t.Logf("after each collection, %d calls allocated %.1f times in all", calls, perCollection)
	if perCollection > 8 {
		t.Fatalf("%d calls after a collection allocated %.1f times, want at most 8 (the pool's cache), not per call", calls, perCollection)
	}
}

// TestDNNLCallStatus checks that dnnlCall reads oneDNN's status (a C int
// in the return register) and that the hot-path wrappers report a
// failure naming the function: each is given a NULL handle, which oneDNN
// 2.x refuses with invalid_arguments.
func TestDNNLCallStatus(t *testing.T) {
	e := loadedConvEngine(t)
	e.mu.Lock()
	defer e.mu.Unlock()
	v := []float32{1}
	args := []execArg{{arg: dnnlArgSrc}}
	cases := []struct {
		name string
		call func() error
		want string
	}{
		{"set_data_handle", func() error { return e.setHandle(0, v) }, "dnnl_memory_set_data_handle: invalid arguments"},
		{"clear_data_handle", func() error { return e.clearHandle(0) }, "dnnl_memory_set_data_handle: invalid arguments"},
		{"execute", func() error { return e.execute("test", 0, args) }, "dnnl_primitive_execute (test): invalid arguments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// The stream is valid and idle: waiting succeeds (status 0).
	if err := e.wait(); err != nil {
		t.Fatalf("dnnl_stream_wait on an idle stream: %v", err)
	}
}

// BenchmarkConvOneDNNCall measures one small steady-state convolution,
// where the foreign calls' own cost shows.
func BenchmarkConvOneDNNCall(b *testing.B) {
	e, err := loadConvEngine()
	if err != nil {
		b.Skipf("oneDNN absent, install libdnnl2 (apt-get install libdnnl2): %v", err)
	}
	_ = e
	defer SetConvChoice("onednn")()
	rng := rand.New(rand.NewSource(1))
	for _, bf16 := range []bool{false, true} {
		s := convShapeOf(1, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1)
		s.BF16 = bf16
		x, w, y := randSlice(rng, s.N*s.C*s.H*s.W), randSlice(rng, s.K*s.C*s.KH*s.KW), make([]float32, s.N*s.K*s.OH*s.OW)
		b.Run(fmt.Sprintf("bf16_%v", bf16), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ConvOneDNN(s, x, w, Epilogue{}, y); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
