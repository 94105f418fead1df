//go:build !race

package compute

// openblasRace is true under the race detector (see openblas_race_test.go).
const openblasRace = false
