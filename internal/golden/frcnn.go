package golden

import (
	"testing"

	"github.com/detlab/detlab/lib/weights"
)

// FasterRCNNWeights returns the frcnn_* goldens' whole model as one file:
// the heads of frcnn_weights.safetensors and the body of
// resnet18.safetensors renamed by weights.ResNetBodyToFasterRCNN (its fc.*
// dropped), so one strict load must find every tensor of the model in it.
func FasterRCNNWeights(t testing.TB) *weights.File {
	t.Helper()
	heads := Load(t, "frcnn_weights.safetensors")
	body := Load(t, "resnet18.safetensors")
	merged := &weights.File{Entries: map[string]*weights.Entry{}}
	for _, n := range heads.Names {
		merged.Names = append(merged.Names, n)
		merged.Entries[n] = heads.Entries[n]
	}
	for _, n := range body.Names {
		if to, ok := weights.ResNetBodyToFasterRCNN.Apply(n); ok {
			if _, dup := merged.Entries[to]; dup {
				t.Fatalf("golden: %s is in both frcnn_weights.safetensors and (as %s) resnet18.safetensors", to, n)
			}
			merged.Names = append(merged.Names, to)
			merged.Entries[to] = body.Entries[n]
		}
	}
	return merged
}
