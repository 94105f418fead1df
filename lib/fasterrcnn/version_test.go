package fasterrcnn

import (
	"strings"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/weights"
)

// TestLoadMarksChanged: Load and LoadBackbone write the model's tensors, so
// every parameter's version must move (values derived from them, cached in
// nn.WeightCache, are keyed by it).
func TestLoadMarksChanged(t *testing.T) {
	m, err := New(Defaults(3))
	if err != nil {
		t.Fatal(err)
	}
	sd := m.StateDict()
	f, err := weights.FromTensorsInOrder(sd.Keys, sd.Tensors, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, load := range []struct {
		name string
		run  func() error
		keys string // prefix of the keys that must move
	}{
		{"Load", func() error { _, err := m.Load(f, weights.LoadOptions{}); return err }, ""},
		{"LoadBackbone", func() error {
			_, err := m.LoadBackbone(golden.Load(t, "resnet18.safetensors"))
			return err
		}, "backbone."},
	} {
		before := map[string]uint64{}
		for _, k := range sd.Keys {
			if p := sd.Param(k); p != nil {
				before[k] = p.Version()
			}
		}
		if err := load.run(); err != nil {
			t.Fatalf("%s: %v", load.name, err)
		}
		for k, v := range before {
			if strings.HasPrefix(k, load.keys) && sd.Param(k).Version() == v {
				t.Errorf("%s: %s kept version %d", load.name, k, v)
			}
		}
	}
}
