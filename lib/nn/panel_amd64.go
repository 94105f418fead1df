//go:build amd64 && !purego

package nn

import "github.com/detlab/detlab/lib/compute"

// copyRunsAVX512 writes dst[p*ldd+t] = src[offs[p]+t] for p < kb
// (kb >= 1) and the t < 32 whose bit is set in masks, with masked AVX-512
// loads and stores (panel_amd64.s).
//
//go:noescape
func copyRunsAVX512(dst, src *float32, offs *int, kb, ldd int, masks uint64)

// hasCopyRuns reports whether copyRuns runs the AVX-512 routine.
var hasCopyRuns = compute.CPU().AVX512F

// copyRuns writes dst[p*ldd+t] = src[offs[p]+t] for p < len(offs) and
// t < n: one run of columns of a patch panel, every row a copy at its
// own offset. The offsets are >= 0 and at most maxOff (the caller's
// promise); the slice ends are checked here, once.
func copyRuns(dst, src []float32, offs []int, maxOff, n, ldd int) {
	kb := len(offs)
	if kb == 0 || n == 0 {
		return
	}
	if !hasCopyRuns || n > 32 {
		copyRunsGo(dst, src, offs, n, ldd)
		return
	}
	_ = dst[(kb-1)*ldd+n-1]
	_ = src[maxOff+n-1]
	copyRunsAVX512(&dst[0], &src[0], &offs[0], kb, ldd, 1<<n-1)
}
