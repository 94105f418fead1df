package roi

import (
	"fmt"
	"math"

	"github.com/detlab/detlab/lib/box"
)

// Detections are one image's final boxes, in decreasing score order.
type Detections struct {
	Boxes  []box.Box
	Scores []float32 // softmax probability of the class
	Labels []int     // class index, 1..numClasses-1
}

// PostprocessDetections turns one image's box-head outputs into detections,
// as RoIHeads.postprocess_detections:
//
//  1. softmax over the numClasses logits of each proposal;
//  2. every class's deltas decoded on the proposal (BBoxRegWeights) and
//     clipped to the (height, width) image;
//  3. the background class (0) dropped;
//  4. candidates with score > ScoreThresh (strictly) kept;
//  5. boxes narrower or lower than MinSize removed;
//  6. NMS at NMSThresh per class (batched NMS);
//  7. the first DetectionsPerImg.
//
// classLogits holds numClasses values per proposal and boxRegression
// 4*numClasses, row-major like the predictor's (R, C) and (R, 4C) outputs.
// NaN logits give NaN scores, which never pass the threshold.
func PostprocessDetections(classLogits, boxRegression []float32, proposals []box.Box, numClasses, height, width int, c Config) (Detections, error) {
	return PostprocessDetectionsWith(nil, classLogits, boxRegression, proposals, numClasses, height, width, c)
}

// PostprocessDetectionsWith is PostprocessDetections with step 6's
// pairwise IoU tests on nb (box.BatchedNMSWith; a GPU backend such as
// lib/cuda's), or on the host when nb is nil. The detections are the same
// either way.
func PostprocessDetectionsWith(nb box.NMSBackend, classLogits, boxRegression []float32, proposals []box.Box, numClasses, height, width int, c Config) (Detections, error) {
	if err := c.Validate(); err != nil {
		return Detections{}, err
	}
	r := len(proposals)
	if numClasses < 2 {
		return Detections{}, fmt.Errorf("%w: %d classes (need background and at least one object class)", ErrInput, numClasses)
	}
	if len(classLogits) != r*numClasses || len(boxRegression) != 4*r*numClasses {
		return Detections{}, fmt.Errorf("%w: %d proposals, %d classes: got %d logits and %d deltas, want %d and %d",
			ErrInput, r, numClasses, len(classLogits), len(boxRegression), r*numClasses, 4*r*numClasses)
	}
	if height <= 0 || width <= 0 {
		return Detections{}, fmt.Errorf("%w: image size %dx%d", ErrInput, height, width)
	}
	decoded, err := c.Coder().Decode(boxRegression, proposals)
	if err != nil {
		return Detections{}, fmt.Errorf("roi: %w", err)
	}
	decoded = box.ClipToImage(decoded, height, width)

	thresh := float32(c.ScoreThresh)
	var cand []box.Box
	var scores []float32
	var labels []int
	probs := make([]float32, numClasses)
	for i := 0; i < r; i++ {
		detectionSoftmax(classLogits[i*numClasses:(i+1)*numClasses], probs)
		for j := 1; j < numClasses; j++ {
			if probs[j] > thresh {
				cand = append(cand, decoded[i*numClasses+j])
				scores = append(scores, probs[j])
				labels = append(labels, j)
			}
		}
	}
	keep := box.RemoveSmall(cand, c.MinSize)
	cand, scores, labels = box.Select(cand, keep), detGatherF32(scores, keep), detGatherInt(labels, keep)
	keep, err = box.BatchedNMSWith(nb, cand, scores, labels, c.NMSThresh)
	if err != nil {
		return Detections{}, fmt.Errorf("roi: %w", err)
	}
	if len(keep) > c.DetectionsPerImg {
		keep = keep[:c.DetectionsPerImg]
	}
	return Detections{Boxes: box.Select(cand, keep), Scores: detGatherF32(scores, keep), Labels: detGatherInt(labels, keep)}, nil
}

// detectionSoftmax writes softmax(x) to out in float32 as torch's CPU kernel does:
// exp(x - max), a float32 sum, and multiplication by the sum's reciprocal.
func detectionSoftmax(x, out []float32) {
	m := x[0]
	for _, v := range x[1:] {
		if v > m || v != v {
			m = v
		}
	}
	var sum float32
	for i, v := range x {
		out[i] = float32(math.Exp(float64(v - m)))
		sum += out[i]
	}
	inv := 1 / sum
	for i := range out {
		out[i] *= inv
	}
}

func detGatherF32(v []float32, idx []int) []float32 {
	out := make([]float32, len(idx))
	for k, i := range idx {
		out[k] = v[i]
	}
	return out
}

func detGatherInt(v []int, idx []int) []int {
	out := make([]int, len(idx))
	for k, i := range idx {
		out[k] = v[i]
	}
	return out
}
