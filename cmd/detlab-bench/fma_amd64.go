package main

import "github.com/detlab/detlab/lib/compute"

//go:noescape
func fmaLoop512(n int)

//go:noescape
func fmaLoop256(n int)

//go:noescape
func dpbf16Loop512(n int)

// fmaKernel returns a loop of independent FMAs at the widest vector width
// this CPU has and the flops one iteration does (0 without AVX2/FMA).
func fmaKernel() (loop func(n int), flopsPerIter int) {
	c := compute.CPU()
	switch {
	case c.AVX512F:
		return fmaLoop512, 12 * 16 * 2
	case c.AVX2 && c.FMA:
		return fmaLoop256, 12 * 8 * 2
	}
	return nil, 0
}

// bf16Kernel returns a loop of independent VDPBF16PS and the flops one
// iteration does (0 without AVX512_BF16).
func bf16Kernel() (loop func(n int), flopsPerIter int) {
	if compute.HasBF16() {
		return dpbf16Loop512, 12 * 32 * 2
	}
	return nil, 0
}
