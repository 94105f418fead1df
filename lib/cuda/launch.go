package cuda

import (
	"fmt"
	"math"
)

// Launch geometry of the contract: 256 threads per block, at most 65535
// blocks (every kernel is grid-stride, so fewer blocks than work is fine).
const (
	blockThreads = 256
	maxGrid      = 65535
)

// gridFor returns the number of blocks for n work items (0 for none).
func gridFor(n int) int {
	if n <= 0 {
		return 0
	}
	return min((n+blockThreads-1)/blockThreads, maxGrid)
}

// channelGrid returns the blocks of a per-channel reduction kernel (one
// block per channel, capped).
func channelGrid(c int) int {
	if c <= 0 {
		return 0
	}
	return min(c, maxGrid)
}

// karg is one kernel argument before packing.
type karg struct {
	kind byte // 'p', 'i', 'f' or 'd'
	v    int64
}

// pArg is a device address argument (0 is NULL).
func pArg(p uint64) karg { return karg{kind: 'p', v: int64(p)} }

// iArg is an int argument; packing fails if it does not fit a C int.
func iArg(v int) karg { return karg{kind: 'i', v: int64(v)} }

// fArg is a float argument.
func fArg(v float32) karg { return karg{kind: 'f', v: int64(math.Float32bits(v))} }

// dArg is a double argument.
func dArg(v float64) karg { return karg{kind: 'd', v: int64(math.Float64bits(v))} }

// bArg is a C int flag (1 for true).
func bArg(v bool) karg {
	if v {
		return iArg(1)
	}
	return iArg(0)
}

// packArgs checks args against the kernel's parameter kinds sig and
// returns one 64-bit slot per argument holding the value as the kernel
// reads it (little endian: an int or float in the low 4 bytes, a double in all 8), ready for
// cuLaunchKernel's array of pointers to values. A wrong count, a wrong
// kind or an int beyond C int's range is an error, never a launch.
func packArgs(name, sig string, args []karg) ([]uint64, error) {
	if len(args) != len(sig) {
		return nil, fmt.Errorf("cuda: kernel %s takes %d arguments (%s), got %d", name, len(sig), sig, len(args))
	}
	slots := make([]uint64, len(args))
	for i, a := range args {
		if a.kind != sig[i] {
			return nil, fmt.Errorf("cuda: kernel %s argument %d: want kind %q, got %q (signature %s)", name, i, sig[i], a.kind, sig)
		}
		switch a.kind {
		case 'p':
			slots[i] = uint64(a.v)
		case 'i':
			if a.v < math.MinInt32 || a.v > math.MaxInt32 {
				return nil, fmt.Errorf("cuda: kernel %s argument %d: %d does not fit a C int", name, i, a.v)
			}
			slots[i] = uint64(uint32(int32(a.v)))
		case 'f':
			slots[i] = uint64(uint32(a.v))
		case 'd':
			slots[i] = uint64(a.v)
		default:
			return nil, fmt.Errorf("cuda: kernel %s argument %d: unknown kind %q", name, i, a.kind)
		}
	}
	return slots, nil
}
