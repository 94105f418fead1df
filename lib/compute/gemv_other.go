//go:build !amd64 || purego

package compute

// gemvT reports false: the blocked product handles 1-row products here.
func gemvT(k int, alpha float32, a, b []float32, ldb int, c []float32, n int) bool { return false }
