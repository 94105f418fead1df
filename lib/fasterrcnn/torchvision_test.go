package fasterrcnn

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func TestTorchvisionArgs(t *testing.T) {
	def := Defaults(5)
	for _, tc := range []struct {
		name  string
		json  string
		check func(c Config) string
		err   bool
	}{
		{name: "only num_classes: every default", json: `{"num_classes": 5}`, check: func(c Config) string {
			if !reflect.DeepEqual(c, def) {
				return fmt.Sprintf("got %+v, want Defaults(5)", c)
			}
			return ""
		}},
		{name: "explicit zero is kept", json: `{"num_classes": 5, "box_score_thresh": 0}`, check: func(c Config) string {
			if c.RoI.ScoreThresh != 0 {
				return fmt.Sprintf("box_score_thresh 0 gave %v", c.RoI.ScoreThresh)
			}
			return ""
		}},
		{name: "None keeps torchvision's default", json: `{"num_classes": 5, "bbox_reg_weights": null, "image_mean": null}`, check: func(c Config) string {
			if c.RoI.BBoxRegWeights != def.RoI.BBoxRegWeights || !reflect.DeepEqual(c.ImageMean, def.ImageMean) {
				return fmt.Sprintf("got %v %v", c.RoI.BBoxRegWeights, c.ImageMean)
			}
			return ""
		}},
		{name: "the article's anchors", json: `{"num_classes": 5, "anchor_sizes": [[32, 64, 128, 256, 512]], "aspect_ratios": [[0.5, 1, 2]], "min_size": 480, "rpn_nms_thresh": 0.6}`, check: func(c Config) string {
			if !reflect.DeepEqual(c.Anchors.Sizes, []float64{32, 64, 128, 256, 512}) || c.MinSize != 480 || c.RPN.NMSThresh != 0.6 {
				return fmt.Sprintf("got anchors %v, min size %d, rpn nms %v", c.Anchors.Sizes, c.MinSize, c.RPN.NMSThresh)
			}
			return ""
		}},
		{name: "two anchor levels", json: `{"num_classes": 5, "anchor_sizes": [[32], [64]], "aspect_ratios": [[1], [1]]}`, err: true},
		{name: "three box coder weights", json: `{"num_classes": 5, "bbox_reg_weights": [1, 1, 1]}`, err: true},
		{name: "no classes", json: `{}`, err: true},
	} {
		a, err := ParseTorchvisionArgs([]byte(tc.json))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		c, err := a.Config()
		if tc.err {
			if !errors.Is(err, ErrConfig) {
				t.Errorf("%s: err = %v, want ErrConfig", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if msg := tc.check(c); msg != "" {
			t.Errorf("%s: %s", tc.name, msg)
		}
	}
	if _, err := ParseTorchvisionArgs([]byte(`{"num_classes": "five"}`)); err == nil {
		t.Error("a string num_classes decoded without error")
	}
}

// A torchvision script's FasterRCNN(...) arguments, dumped with
// json.dumps, become a Config.
func ExampleTorchvisionArgs() {
	args, err := ParseTorchvisionArgs([]byte(`{"num_classes": 4, "min_size": 480, "max_size": 640,
		"anchor_sizes": [[32, 64, 128, 256, 512]], "aspect_ratios": [[0.5, 1.0, 2.0]]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, err := args.Config()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.NumClasses, cfg.MinSize, cfg.MaxSize, cfg.Anchors.Sizes, cfg.RPN.NMSThresh)
	// Output: 4 480 640 [32 64 128 256 512] 0.7
}
