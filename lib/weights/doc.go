// Package weights reads and writes model weights: safetensors files and the
// zip-and-pickle .pth files that torch.save writes, with strict loading into a
// model's state dict and key mapping between torchvision's layouts.
package weights
