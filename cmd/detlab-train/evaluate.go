package main

import (
	"context"
	"fmt"

	"github.com/detlab/detlab/lib/compute"
	"github.com/detlab/detlab/lib/data"
	"github.com/detlab/detlab/lib/eval"
	"github.com/detlab/detlab/lib/fasterrcnn"
	"github.com/detlab/detlab/lib/tensor"
)

// evaluate predicts every image of ds in batches and scores the detections
// with pycocotools' COCOeval (lib/eval). Image ids are the dataset
// indices; VOC's difficult objects are marked crowd, so that, as in VOC's
// own evaluation, a detection on one is neither a hit nor a miss.
// progress, when not nil, is called after each batch with the images done.
func evaluate(ctx context.Context, m *fasterrcnn.Model, ds data.Dataset, classes []string, batch int, progress func(done, total int)) (*eval.Result, error) {
	cats := make([]eval.Category, 0, len(classes)-1)
	for i, name := range classes[1:] {
		cats = append(cats, eval.Category{ID: i + 1, Name: name})
	}
	ev := eval.NewCOCO(cats)
	for start := 0; start < ds.Len(); start += batch {
		end := min(start+batch, ds.Len())
		var imgs []*tensor.Tensor
		var samples []data.Sample
		for i := start; i < end; i++ {
			s, err := ds.Sample(i)
			if err != nil {
				return nil, fmt.Errorf("detlab-train: evaluation: %w", err)
			}
			img, err := s.Tensor()
			if err != nil {
				return nil, fmt.Errorf("detlab-train: evaluation: image %s: %w", s.ID, err)
			}
			samples = append(samples, s)
			imgs = append(imgs, img)
		}
		dets, err := m.PredictTensors(ctx, imgs)
		if err != nil {
			return nil, fmt.Errorf("detlab-train: evaluation: %w", err)
		}
		for k, s := range samples {
			id := int64(start + k)
			gt := eval.GroundTruth{ImageID: id, Boxes: s.Boxes, Labels: s.Labels}
			if crowd, any := ignored(s); any {
				gt.Crowd = crowd
			}
			if err := ev.AddGroundTruth(gt); err != nil {
				return nil, fmt.Errorf("detlab-train: evaluation: image %s: %w", s.ID, err)
			}
			d := dets[k]
			if err := ev.AddDetections(eval.Detections{ImageID: id, Boxes: d.Boxes, Labels: d.Labels, Scores: d.Scores}); err != nil {
				return nil, fmt.Errorf("detlab-train: evaluation: image %s: %w", s.ID, err)
			}
		}
		if progress != nil {
			progress(end, ds.Len())
		}
	}
	res, err := ev.Evaluate()
	if err != nil {
		return nil, fmt.Errorf("detlab-train: evaluation: %w", err)
	}
	return res, nil
}

// ignored marks the objects evaluation ignores: VOC difficult or COCO
// crowd. The flag is false when there are none.
func ignored(s data.Sample) ([]bool, bool) {
	out := make([]bool, len(s.Boxes))
	anyIgnored := false
	for i := range out {
		out[i] = (i < len(s.Difficult) && s.Difficult[i]) || (i < len(s.Crowd) && s.Crowd[i])
		anyIgnored = anyIgnored || out[i]
	}
	return out, anyIgnored
}

// cpuName describes the processor for the timing record.
func cpuName() string { return fmt.Sprint(compute.CPU()) }
