// Package weights reads and writes model weights: safetensors files and the
// zip-and-pickle .pth files that torch.save writes, with strict loading into a
// model's state dict and key mapping between torchvision's layouts.
//
//	f, err := weights.ReadFile("resnet18.pth")           // .pth (zip or legacy) or .safetensors
//	for _, name := range f.Names {
//		fmt.Println(name, f.Entries[name].Shape)
//	}
//	sd := nn.State(body, "backbone.")                     // the model's live tensors
//	rep, err := weights.Load(sd.Tensors, f, weights.LoadOptions{
//		Keys:         weights.ResNetBodyToFasterRCNN, // conv1 -> backbone.0, ..., drop fc.*
//		AllowMissing: true,                           // the detection heads are not in the file
//	})
//	file, err := weights.FromTensorsInOrder(sd.Keys, sd.Tensors, nil)
//	err = weights.WriteSafetensorsFile("model.safetensors", file)  // atomic
//
// Reading: ReadPthFile interprets the pickle itself (no code in the file runs)
// and understands the functions a state dict uses (_rebuild_tensor_v2,
// _rebuild_parameter, OrderedDict); tensors of any strides are materialised in
// row-major order; float16/bfloat16/float64 become float32 and integer or bool
// tensors int64. A checkpoint dict wrapping the state dict under "state_dict",
// "model", "model_state_dict" or "model_state" is unwrapped. Corrupt or
// truncated files give errors wrapping ErrFormat, never a panic, and no
// reader allocates much more than the file's own size.
//
// Writing: WriteSafetensors follows the reference layout (offsets contiguous in
// header order, header padded to 8 bytes); FromTensors stores
// num_batches_tracked as an I64 scalar like torch; WriteSafetensorsFile
// replaces the target atomically.
//
// Loading: Load is strict by default and checks everything before copying
// anything; its *LoadError lists every missing, unexpected and mis-shaped key.
package weights
