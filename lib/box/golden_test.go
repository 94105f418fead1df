package box

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/detlab/detlab/internal/golden"
	"github.com/detlab/detlab/lib/weights"
)

func goldenBoxes(t *testing.T, f *weights.File, name string) []Box {
	t.Helper()
	b, err := FromTensor(golden.Entry(t, f, name).Tensor())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

func TestGoldenIoU(t *testing.T) {
	f := golden.Load(t, "boxes.safetensors")
	a, b := goldenBoxes(t, f, "boxes"), goldenBoxes(t, f, "boxes2")
	got := IoU(a, b)
	want := golden.Entry(t, f, "box_iou")
	golden.CheckShape(t, "box_iou", got.Shape(), want.Shape)
	golden.Check(t, "box_iou", got.Data(), want.F32Data, golden.Tol{Atol: 2e-6, RelL2: 1e-6})
}

func TestGoldenNMS(t *testing.T) {
	f := golden.Load(t, "boxes.safetensors")
	boxes := goldenBoxes(t, f, "boxes")
	scores := golden.Entry(t, f, "scores").F32Data
	labels := golden.Ints(t, f, "labels")
	large := goldenBoxes(t, f, "large_boxes")
	largeScores := golden.Entry(t, f, "large_scores").F32Data
	largeLabels := golden.Ints(t, f, "large_labels")
	if 4*len(boxes) > coordinateTrickMaxNumel || 4*len(large) <= coordinateTrickMaxNumel {
		t.Logf("note: fixture sizes %d/%d do not exercise both batched_nms paths", len(boxes), len(large))
	}
	tests := []struct {
		name string
		run  func() ([]int, error)
	}{
		{"nms_keep_07", func() ([]int, error) { return NMS(boxes, scores, 0.7) }},
		{"nms_keep_05", func() ([]int, error) { return NMS(boxes, scores, 0.5) }},
		{"batched_nms_keep_05", func() ([]int, error) { return BatchedNMS(boxes, scores, labels, 0.5) }},
		{"large_batched_nms_keep_05", func() ([]int, error) { return BatchedNMS(large, largeScores, largeLabels, 0.5) }},
	}
	for _, tc := range tests {
		got, err := tc.run()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if want := golden.Ints(t, f, tc.name); !slices.Equal(got, want) {
			t.Errorf("%s: got %v\nwant %v", tc.name, got, want)
		} else {
			t.Logf("%s: %d indices equal", tc.name, len(got))
		}
	}
}

func TestGoldenClipRemoveSmall(t *testing.T) {
	f := golden.Load(t, "boxes.safetensors")
	var size [2]int
	if err := json.Unmarshal([]byte(f.Metadata["image_size"]), &size); err != nil {
		t.Fatalf("image_size metadata: %v", err)
	}
	edge := goldenBoxes(t, f, "edge_boxes")
	clipped := ClipToImage(edge, size[0], size[1])
	golden.Check(t, "clip_boxes_to_image", Flatten(clipped), golden.Entry(t, f, "clip_boxes_to_image").F32Data, golden.Tol{})
	for _, tc := range []struct {
		name  string
		boxes []Box
	}{{"remove_small_boxes_keep", edge}, {"remove_small_boxes_clipped_keep", clipped}} {
		got := RemoveSmall(tc.boxes, 1e-3)
		if want := golden.Ints(t, f, tc.name); !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, want)
		}
	}
}

func TestGoldenCoder(t *testing.T) {
	f := golden.Load(t, "boxes.safetensors")
	ref := goldenBoxes(t, f, "encode_reference_boxes")
	props := goldenBoxes(t, f, "encode_proposals")
	dboxes := goldenBoxes(t, f, "decode_boxes")
	for _, tc := range []struct {
		suffix string
		coder  Coder
		encTol golden.Tol
	}{
		{"w1111", NewCoder(1, 1, 1, 1), golden.Tol{Atol: 5e-6, RelL2: 1e-5}},
		{"w101055", NewCoder(10, 10, 5, 5), golden.Tol{Atol: 5e-5, RelL2: 2e-5}},
	} {
		enc, err := tc.coder.Encode(ref, props)
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, "encode_"+tc.suffix, enc, golden.Entry(t, f, "encode_"+tc.suffix).F32Data, tc.encTol)
		decTol := golden.Tol{Atol: 5e-3, RelL2: 1e-6}
		for _, d := range []struct{ codes, want string }{
			{"decode_codes_" + tc.suffix, "decode_" + tc.suffix},
			{"decode_codes_multiclass", "decode_multiclass_" + tc.suffix},
		} {
			codes := golden.Entry(t, f, d.codes)
			dec, err := tc.coder.Decode(codes.F32Data, dboxes)
			if err != nil {
				t.Fatal(err)
			}
			want := golden.Entry(t, f, d.want)
			if got := len(dec) / len(dboxes); got != want.Shape[1] {
				t.Errorf("%s: %d boxes per input, want %d", d.want, got, want.Shape[1])
			}
			golden.Check(t, d.want, Flatten(dec), want.F32Data, decTol)
		}
	}
}
