// Package compute holds the numeric backends the library's hot paths run on:
// a single-precision matrix multiply (Sgemm) with row-major BLAS semantics,
// a pure-Go implementation that always works, and an OpenBLAS path that is
// loaded at run time when the shared library is present.
//
// Callers use Sgemm and never care which backend runs; Backend reports it
// and the DETLAB_BLAS environment variable (go or openblas) forces one.
package compute
