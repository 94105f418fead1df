// Package compute holds the numeric backends the library's hot paths run on:
// a single-precision matrix multiply, Sgemm, with row-major BLAS semantics;
// SgemmEpilogue and SgemmPanels, which fuse a per-row scale, shift,
// residual and ReLU into the product's store and let a convolution write
// its patch matrix straight into the packed panels (no im2col pass); and
// SgemmBF16, the same contract with bfloat16 operands and float32
// accumulation (VDPBF16PS on CPUs with AVX512_BF16, emulated elsewhere),
// with its own epilogue and panel forms (SgemmBF16Epilogue,
// SgemmBF16Panels) and BF16Matrix, an operand converted once and reused.
//
// Backends, chosen once at the first call (by default the Go implementation
// where its AVX-512 kernel runs, else OpenBLAS when present, else Go):
//
//   - OpenBLAS, loaded at run time with dlopen (github.com/ebitengine/purego,
//     no cgo needed) when libopenblas.so.0 is present (Debian: apt-get
//     install libopenblas0 or libopenblas-dev); its thread count is set to
//     GOMAXPROCS. DETLAB_OPENBLAS names an explicit library path.
//   - oneDNN, loaded the same way (libdnnl.so.3 or .so.2; Debian: apt-get
//     install libdnnl2), cached matmul primitives (dnnl_sgemm where they
//     cannot run) on OpenMP threads that follow
//     GOMAXPROCS unless OMP_NUM_THREADS is set. DETLAB_ONEDNN names an
//     explicit library path. Faster than Go on bare products here, slower
//     end to end because convolutions must then write the whole patch
//     matrix, so it is used only when asked for.
//   - Go: a blocked, packed Goto-style implementation, parallel over
//     GOMAXPROCS goroutines, whose micro-kernel is chosen by CPUID: AVX-512
//     (12x32) or AVX2+FMA (6x16) assembly on amd64, a portable 4x4 Go
//     kernel elsewhere or with the purego build tag; 1-row products with
//     B transposed (a classifier at batch 1) run as AVX-512 dot products.
//     The parts run on lib/internal/workpool's workers (shared with
//     lib/nn's loops), which spin briefly between calls before parking.
//
// The DETLAB_BLAS environment variable forces one: go, portable, openblas or
// onednn. A forced library that cannot load falls back to Go, and Backend's
// text says why.
//
// Convolutions: ConvOneDNN runs a convolution with its epilogue (folded
// BatchNorm scale and shift, residual, ReLU), in float32 or bfloat16
// (ConvShape.BF16: autocast, on oneDNN's avx512_core_bf16 or AMX
// kernels), through oneDNN's convolution primitives when DETLAB_CONV
// selects them: unset for bfloat16 inference convolutions
// (ConvShape.Inference) with an even channel count, auto also for
// BatchNorm-folded float32 convolutions where oneDNN picks an AVX-512 JIT
// kernel and for every bfloat16 one where it picks a bfloat16 kernel,
// onednn for every convolution, go for none; ConvBackend says which.
//
// Backend says which runs and CPU describes the processor, for benchmark
// printouts:
//
//	fmt.Println(compute.CPU(), "|", compute.Backend())
//	// AMD EPYC, 2 cores, avx2 fma avx512f avx512_bf16 | openblas 0.3.21 (runtime, 2 threads)
//
// Sgemm may be called from several goroutines at once. Each call already
// uses every core, so calling it concurrently buys nothing; with OpenBLAS it
// oversubscribes the machine's threads.
package compute
