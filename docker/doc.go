// Package docker holds detlab's container images (Dockerfile.cpu, for any
// machine, and Dockerfile.gpu, on an NVIDIA CUDA 12 runtime base, which runs
// the CPU code until the GPU backend lands) and start-jupyter.sh, which both
// images run. No Docker engine runs in the test environment, so the tests
// check what can be checked without one: that every path the images copy
// or run exists, that the packages they build build, that the flags they
// pass to detlab exist, and that they install at least the Debian packages
// CI installs.
package docker
