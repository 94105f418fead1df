package main

import (
	"testing"

	"github.com/detlab/detlab/lib/nn"
)

func TestParseFRCNN(t *testing.T) {
	for _, c := range []struct {
		name, size string
		want       frcnnSpec
		err        bool
	}{
		{"frcnn-train-640x480-b2", "", frcnnSpec{train: true, w: 640, h: 480, n: 2}, false},
		{"frcnn-train-640x480-b8-amp", "", frcnnSpec{train: true, w: 640, h: 480, n: 8, autocast: nn.Float16}, false},
		{"frcnn-infer-640x480-b1", "", frcnnSpec{w: 640, h: 480, n: 1}, false},
		{"frcnn-train-320-b2", "", frcnnSpec{train: true, w: 320, h: 320, n: 2}, false},
		{"frcnn-train-640x480-b2", "96x64", frcnnSpec{train: true, w: 96, h: 64, n: 2}, false},
		{"frcnn-infer-640x480-b1-amp", "", frcnnSpec{}, true},
		{"frcnn-train-640x480-b0", "", frcnnSpec{}, true},
		{"frcnn-train-16x16-b1", "", frcnnSpec{}, true},
		{"frcnn-train-640x480-b2", "96", frcnnSpec{}, true},
		{"frcnn-train-640x480-b2", "8x8", frcnnSpec{}, true},
		{"resnet18-fwd-224-b1", "", frcnnSpec{}, true},
	} {
		got, err := parseFRCNN(c.name, c.size)
		if (err != nil) != c.err || (err == nil && got != c.want) {
			t.Errorf("parseFRCNN(%q, %q) = %+v, %v; want %+v, error %v", c.name, c.size, got, err, c.want, c.err)
		}
	}
	for _, n := range gpuSuite {
		if _, err := parseFRCNN(n, ""); err != nil {
			t.Errorf("suite workload %s: %v", n, err)
		}
	}
}

func TestMatchOnly(t *testing.T) {
	for _, c := range []struct {
		name, only string
		want       bool
	}{
		{"frcnn-train-640x480-b2-amp", "", true},
		{"frcnn-train-640x480-b2-amp", "amp", true},
		{"frcnn-infer-640x480-b1", "b2-amp,infer", true},
		{"frcnn-train-640x480-b8", "b2-amp,infer", false},
		{"nms-2000", ",", false},
	} {
		if got := matchOnly(c.name, c.only); got != c.want {
			t.Errorf("matchOnly(%q, %q) = %v, want %v", c.name, c.only, got, c.want)
		}
	}
}
