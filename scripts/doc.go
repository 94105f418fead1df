// Package scripts holds detlab's shell scripts and the tests that run them;
// it has no Go API.
//
//	scripts/gpu-build    (a machine with Go) builds what travels to a GPU
//	                     machine: detlab-bench, the parity test binaries
//	                     and their goldens, xz-packed into out/gpu (the
//	                     44 MiB resnet18 golden is regenerated there from
//	                     its seed and checked against its hash)
//	scripts/gpu-check    (the GPU machine, no Go needed) prints the driver,
//	                     cuBLAS and PyTorch versions, runs the parity tests,
//	                     benchmarks detlab's Faster R-CNN against
//	                     torchvision's on the GPU and writes gpu-check.md;
//	                     without a GPU it runs a CPU smoke test instead
//	scripts/gpu/         the PyTorch side of that benchmark
//	scripts/bench-ab     compares builds of detlab-bench on one workload,
//	                     interleaving their runs round by round (a change
//	                     on a shared VM is measured by winning every round,
//	                     not by one run)
//
// The tests here run gpu-check's CPU smoke mode and dry run, so the script
// and its Python are exercised on every machine.
package scripts
