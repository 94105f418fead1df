//go:build race

package compute

// openblasRace is true under the race detector, whose sync.Pool drops a
// quarter of what is put back (purego.SyscallN keeps its argument blocks in
// one), so allocation counts there say nothing of the code.
const openblasRace = true
