//go:build !amd64

package main

// fmaKernel has no vector FMA loop off amd64: the peak stays the formula's.
func fmaKernel() (loop func(n int), flopsPerIter int) { return nil, 0 }

// bf16Kernel has no VDPBF16PS loop off amd64.
func bf16Kernel() (loop func(n int), flopsPerIter int) { return nil, 0 }
