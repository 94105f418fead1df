package golden

// ResNet18IO holds the tolerances of resnet18_io.safetensors, mirroring
// the tolerance column of ../shared/golden/README.md for that file: every
// test that checks a ResNet18 (on any backend or device) against it uses
// this one table. Do not loosen these.
var ResNet18IO = map[string]Tol{
	"eval.stem":                        {Atol: 2e-5, RelL2: 2e-6},
	"eval.layer1":                      {Atol: 1e-4, RelL2: 1e-5},
	"eval.layer2":                      {Atol: 2e-4, RelL2: 1e-5},
	"eval.layer3":                      {Atol: 1e-3, RelL2: 2e-5},
	"eval.layer4":                      {Atol: 1e-3, RelL2: 2e-5},
	"eval.avgpool":                     {Atol: 1e-4, RelL2: 5e-6},
	"eval.logits":                      {Atol: 1e-4, RelL2: 5e-6},
	"train.layer1":                     {Atol: 2e-4, RelL2: 2e-5},
	"train.logits":                     {Atol: 2e-5, RelL2: 2e-5},
	"train.bn1.running_mean":           {Atol: 5e-7, RelL2: 1e-6},
	"train.bn1.running_var":            {Atol: 2e-6, RelL2: 1e-6},
	"train.layer4.1.bn2.running_mean":  {Atol: 2e-6, RelL2: 5e-6},
	"train.layer4.1.bn2.running_var":   {Atol: 5e-6, RelL2: 2e-6},
	"train.grad.conv1.weight":          {Atol: 5, RelL2: 5e-2},
	"train.grad.layer4.1.conv2.weight": {Atol: 1e-4, RelL2: 1e-4},
	"train.grad.fc.weight":             {Atol: 2e-4, RelL2: 2e-5},
}
