//go:build (linux || darwin || freebsd) && (amd64 || arm64)

// Package dl opens native libraries at run time for lib/compute (OpenBLAS,
// oneDNN) and lib/cuda (the CUDA driver, cuBLAS) through purego, trying a
// list of names in order.
package dl

import (
	"runtime"
	"strings"

	"github.com/ebitengine/purego"
)

// OpenFirst dlopens the first of names that loads, with mode (purego's
// RTLD_* flags), and returns its handle and name. When none loads, the
// handle is 0 and reasons holds one line per name, each naming it. before,
// when not nil, runs before each attempt (lib/cuda preloads a companion
// library there).
//
// The goroutine stays on one OS thread throughout: purego reads dlerror,
// which is per thread, in a call after dlopen's, and on another thread it
// may read nothing, which left a reason empty.
func OpenFirst(names []string, mode int, before func(name string)) (h uintptr, name string, reasons []string) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, n := range names {
		if before != nil {
			before(n)
		}
		h, err := purego.Dlopen(n, mode)
		if err == nil {
			return h, n, nil
		}
		msg := err.Error()
		if !strings.Contains(msg, n) {
			msg = n + ": " + msg
		}
		reasons = append(reasons, msg)
	}
	return 0, "", reasons
}
