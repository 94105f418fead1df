// Package compute holds the numeric backends the library's hot paths run on,
// starting with a single-precision matrix multiply, Sgemm, with row-major
// BLAS semantics.
//
// Backends, chosen once at the first call (by default the Go implementation
// where its AVX-512 kernel runs, else OpenBLAS when present, else Go):
//
//   - OpenBLAS, loaded at run time with dlopen (github.com/ebitengine/purego,
//     no cgo needed) when libopenblas.so.0 is present (Debian: apt-get
//     install libopenblas0 or libopenblas-dev); its thread count is set to
//     GOMAXPROCS. DETLAB_OPENBLAS names an explicit library path.
//   - Go: a blocked, packed Goto-style implementation, parallel over
//     GOMAXPROCS goroutines, whose micro-kernel is chosen by CPUID: AVX-512
//     (12x32) or AVX2+FMA (6x16) assembly on amd64, a portable 4x4 Go
//     kernel elsewhere or with the purego build tag.
//
// The DETLAB_BLAS environment variable forces one: go, portable or openblas.
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
