package weights_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/detlab/detlab/lib/tensor"
	"github.com/detlab/detlab/lib/weights"
)

// Load a torch.save file and list its tensors with their shapes.
func Example() {
	f, err := weights.ReadFile("testdata/checkpoint.pth") // .pth or .safetensors
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range f.Names {
		e := f.Entries[name]
		fmt.Println(name, e.DType, e.Shape)
	}
	fmt.Println("unwrapped from:", f.Metadata["state_dict_key"])
	// Output:
	// a.weight F32 [2 3]
	// bn.num_batches_tracked I64 []
	// unwrapped from: model
}

// Save a state dict and load it back strictly into a model's live tensors.
func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "weights")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.safetensors")

	trained := map[string]*tensor.Tensor{
		"conv1.weight":            tensor.MustFromSlice([]float32{0.5, -1}, 2, 1, 1, 1),
		"bn1.num_batches_tracked": tensor.MustFromSlice([]float32{100}),
		"fc.bias":                 tensor.MustFromSlice([]float32{3}, 1),
	}
	if err := weights.SaveSafetensorsFile(path, trained, map[string]string{"epoch": "6"}); err != nil {
		log.Fatal(err)
	}

	// A detection model names the ResNet body backbone.N and has no fc.
	model := map[string]*tensor.Tensor{
		"backbone.0.weight":              tensor.New(2, 1, 1, 1),
		"backbone.1.num_batches_tracked": tensor.New(),
		"rpn.head.conv.0.0.bias":         tensor.New(4),
	}
	_, err := weights.LoadFile(model, path, weights.LoadOptions{Keys: weights.ResNetBodyToFasterRCNN})
	fmt.Println(err)
	rep, err := weights.LoadFile(model, path, weights.LoadOptions{Keys: weights.ResNetBodyToFasterRCNN, AllowMissing: true})
	fmt.Println(rep, err)
	fmt.Println(model["backbone.0.weight"].Data(), model["backbone.1.num_batches_tracked"].Data())
	// Output:
	// weights: load: 1 missing key: rpn.head.conv.0.0.bias; 2 loaded, 1 dropped, 0 defaulted
	// 1 missing key: rpn.head.conv.0.0.bias; 2 loaded, 1 dropped, 0 defaulted <nil>
	// [0.5 -1] [100]
}
