package nn

import (
	"math"

	"github.com/detlab/detlab/lib/internal/freelist"
)

// maxPool3s2Job is the inference 3x3, stride 2, padding 1 max pool over
// planes [p0, p1): the vector kernel of maxPool3s2Keys where there is one,
// the separable Go loops of maxPool3s2 for planes holding a NaN (whose
// result the Go builtin max defines) and elsewhere.
type maxPool3s2Job struct {
	geo  PoolGeom
	x, y []float32
}

var maxPool3s2Jobs freelist.List[maxPool3s2Job]

func (j *maxPool3s2Job) run(p0, p1 int) {
	geo := j.geo
	hw, ohw := geo.H*geo.W, geo.OH*geo.OW
	var buf [maxPoolKeyBuf]int32 // stays on the stack: the kernels do not keep it
	keys := buf[:]
	if n := maxPoolKeyLen(geo.OW); n > len(keys) {
		keys = make([]int32, n)
	}
	var hm []float32
	for p := p0; p < p1; p++ {
		plane, out := j.x[p*hw:(p+1)*hw], j.y[p*ohw:(p+1)*ohw]
		if maxPool3s2Fast(geo, plane, out, keys) {
			continue
		}
		if hm == nil {
			hm = make([]float32, geo.H*geo.OW)
		}
		maxPool3s2(geo, plane, out, hm)
	}
}

// maxPoolKeyLen is the length of maxPool3s2Fast's key row for ow outputs:
// a -inf sentinel, the row's keys, then sentinels up to the last index
// the 16-wide stride-2 loads read.
func maxPoolKeyLen(ow int) int { return 32*((ow+15)/16) + 1 }

// maxPoolKeyMin is the key below every non-NaN float32's (see
// maxpool_amd64.s): the padding sentinel, never a window's maximum.
const maxPoolKeyMin = math.MinInt32
