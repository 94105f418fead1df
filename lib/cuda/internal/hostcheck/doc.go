// Package hostcheck checks detlab's CUDA kernels without a GPU. It holds
// only tests: they compile the real kernel sources (lib/cuda/kernels) with
// g++ against a small CUDA shim (testdata/sim.h, where every thread of a
// block is an OS thread, so __syncthreads and __shared__ memory behave),
// run each kernel on random shapes and data with grids smaller than the
// work (exercising the grid-stride loops), and compare the results with
// lib/nn's CPU kernels, lib/train's SGD and nn.RoundBF16/RoundFP16: bit for
// bit where the kernel mirrors the CPU's order of operations, within a
// stated tolerance where it sums in another order.
//
// The tests skip when g++ (with C++20's <barrier>) is missing.
//
//	go test ./lib/cuda/hostcheck
package hostcheck
