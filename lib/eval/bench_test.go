package eval

import (
	"math/rand"
	"testing"

	"github.com/detlab/detlab/lib/box"
)

// syntheticEvaluator builds n images with 3 classes: 0-15 objects each,
// 85% detected with jitter, 20% duplicated, a few false positives.
func syntheticEvaluator(n int, seed int64) *Evaluator {
	rng := rand.New(rand.NewSource(seed))
	ev := NewCOCO([]Category{{ID: 1, Name: "a"}, {ID: 2, Name: "b"}, {ID: 3, Name: "c"}})
	jit := func(v, s float32) float32 { return v + s*float32(rng.NormFloat64())*0.08 }
	for i := 0; i < n; i++ {
		var gt GroundTruth
		var dt Detections
		gt.ImageID, dt.ImageID = int64(i+1), int64(i+1)
		for j := rng.Intn(16); j > 0; j-- {
			w, h := 8+float32(rng.Float64())*150, 8+float32(rng.Float64())*150
			x, y := float32(rng.Float64())*500, float32(rng.Float64())*400
			l := 1 + rng.Intn(3)
			gt.Boxes = append(gt.Boxes, box.New(x, y, x+w, y+h))
			gt.Labels = append(gt.Labels, l)
			if rng.Float64() < 0.85 {
				for k := 0; k < 1+boolInt(rng.Float64() < 0.2); k++ {
					dt.Boxes = append(dt.Boxes, box.New(jit(x, w), jit(y, h), jit(x+w, w), jit(y+h, h)))
					dt.Labels = append(dt.Labels, l)
					dt.Scores = append(dt.Scores, float32(rng.Float64()))
				}
			}
		}
		for j := rng.Intn(6); j > 0; j-- {
			x, y := float32(rng.Float64())*500, float32(rng.Float64())*400
			dt.Boxes = append(dt.Boxes, box.New(x, y, x+30, y+40))
			dt.Labels = append(dt.Labels, 1+rng.Intn(3))
			dt.Scores = append(dt.Scores, float32(rng.Float64())*0.5)
		}
		if err := ev.Add(gt, dt); err != nil {
			panic(err)
		}
	}
	return ev
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// BenchmarkEvaluate500 evaluates a synthetic 500-image set (about 3750
// ground truths and 4400 detections).
func BenchmarkEvaluate500(b *testing.B) {
	ev := syntheticEvaluator(500, 1)
	gt, dts := ev.COCO()
	b.Logf("500 images, %d ground truths, %d detections", len(gt.Annotations), len(dts))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ev.Evaluate(); err != nil {
			b.Fatal(err)
		}
	}
}
