//go:build !amd64 || purego

package nn

// maxPoolKeyBuf is the stack key row of maxPool3s2Job (unused here).
const maxPoolKeyBuf = 1

// maxPool3s2Fast reports false: without the AVX-512 kernels every plane
// takes maxPool3s2.
func maxPool3s2Fast(geo PoolGeom, plane, out []float32, keys []int32) bool { return false }
