//go:build !amd64 || purego

package nn

// copyRuns writes dst[p*ldd+t] = src[offs[p]+t] for p < len(offs) and
// t < n: one run of columns of a patch panel, every row a copy at its
// own offset; maxOff is the largest offset (unused here).
func copyRuns(dst, src []float32, offs []int, maxOff, n, ldd int) {
	copyRunsGo(dst, src, offs, n, ldd)
}
