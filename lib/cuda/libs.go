package cuda

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// EnvLibs names the environment variable holding extra directories
// (colon separated) searched first for libcuda.so.1 and libcublas.so.*;
// scripts/gpu-check sets it to PyTorch's nvidia-* wheel directories.
const EnvLibs = "DETLAB_CUDA_LIBS"

// cublasSonames are the cuBLAS major versions tried, newest first.
var cublasSonames = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11"}

// fixedLibDirs are searched after the loader's own path: a CUDA toolkit
// install, the driver mount of NVIDIA's container images, and the nvidia-*
// wheels of a PyTorch virtual environment or system Python.
var fixedLibDirGlobs = []string{
	"/usr/local/cuda/lib64",
	"/usr/local/cuda-*/lib64",
	"/usr/local/nvidia/lib64",
	"/usr/local/nvidia/lib",
	"/opt/torch/.venv/lib/python3*/site-packages/nvidia/cublas/lib",
	"/opt/torch/.venv/lib/python3*/site-packages/nvidia/cu*/lib",
	"/usr/local/lib/python3*/dist-packages/nvidia/cublas/lib",
	"/usr/local/lib/python3*/site-packages/nvidia/cublas/lib",
}

// envDirs returns the non-empty directories of $DETLAB_CUDA_LIBS.
func envDirs(getenv func(string) string) []string {
	var dirs []string
	for _, d := range strings.Split(getenv(EnvLibs), string(os.PathListSeparator)) {
		if d = strings.TrimSpace(d); d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// candidates lists what to dlopen for a library with the given sonames, in
// order: each soname in the $DETLAB_CUDA_LIBS directories, then the bare
// soname (the loader's path: LD_LIBRARY_PATH, ld.so.cache), then each
// soname in the fixed directories that exist (glob expands them).
func candidates(sonames []string, getenv func(string) string, glob func(string) ([]string, error)) []string {
	var out []string
	add := func(p string) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for _, so := range sonames {
		for _, d := range envDirs(getenv) {
			add(filepath.Join(d, so))
		}
	}
	for _, so := range sonames {
		add(so)
	}
	var fixed []string
	for _, g := range fixedLibDirGlobs {
		m, _ := glob(g)
		slices.Sort(m)
		slices.Reverse(m) // newest versioned directory first
		fixed = append(fixed, m...)
	}
	for _, so := range sonames {
		for _, d := range fixed {
			add(filepath.Join(d, so))
		}
	}
	return out
}

// companion returns the library that must be loaded before soname from
// the same directory: cuBLAS needs cuBLASLt of the same major version,
// which the wheels do not always find by RPATH.
func companion(path string) string {
	dir, base := filepath.Split(path)
	if !strings.HasPrefix(base, "libcublas.so.") {
		return ""
	}
	return dir + "libcublasLt.so." + strings.TrimPrefix(base, "libcublas.so.")
}
