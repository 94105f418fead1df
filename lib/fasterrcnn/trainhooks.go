package fasterrcnn

import (
	"fmt"

	"github.com/detlab/detlab/lib/nn"
)

// BackwardScaled is Backward on the total loss multiplied by scale: the
// gradient seed is scale instead of 1, as torch's
// (scaler.scale(loss / accum)).backward(). lib/train uses it for loss scaling
// and gradient accumulation. Like Backward it can run once.
func (l *Losses) BackwardScaled(scale float32) error {
	if l == nil || l.g == nil {
		return fmt.Errorf("%w: no losses to differentiate", ErrInput)
	}
	l.save()
	return l.backward(nn.MulScalar(l.g, l.Total, scale))
}

// SeedSampler reseeds the random source of the training samplers (the RPN's
// anchor sampler and the box head's proposal sampler). A trainer that seeds
// it from its position before every forward pass makes training resumable:
// the samplers' state is then the seed and the position.
func (m *Model) SeedSampler(seed int64) {
	// Reseeding in place draws what a new rand.New(rand.NewSource(seed))
	// would, without a new 5 KB source per batch.
	m.rng.Seed(seed)
}
