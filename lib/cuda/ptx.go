package cuda

import (
	_ "embed" // the PTX module
	"fmt"
	"slices"
	"strings"
)

//go:generate go run ./gen

// kernelsPTX is the PTX module of detlab's CUDA kernels (kernels/*.cu,
// compiled by gen with nvcc for compute_80, which the driver JIT-compiles
// for the GPU at hand). cuModuleLoadData needs it NUL-terminated: append
// "\x00".
//
//go:embed ptx/kernels.ptx
var kernelsPTX string

// kernelNames lists every kernel of the module, as kernels/kernels.h
// declares them; the tests check that the PTX has exactly these entries.
var kernelNames = []string{
	"detlab_im2col",
	"detlab_col2im",
	"detlab_bias_add",
	"detlab_channel_sum_add",
	"detlab_channel_stats",
	"detlab_channel_affine",
	"detlab_bn_train_stats",
	"detlab_bn_backward_sums",
	"detlab_bn_backward_dx",
	"detlab_maxpool2d",
	"detlab_maxpool2d_backward",
	"detlab_round_bf16",
	"detlab_round_fp16",
	"detlab_add",
	"detlab_relu",
	"detlab_relu_backward",
	"detlab_sgd_step",
	"detlab_nonfinite",
	"detlab_scale",
	"detlab_nms_mask",
	"detlab_to_bf16",
	"detlab_to_fp16",
	"detlab_im2col_bf16",
	"detlab_im2col_fp16",
	"detlab_roialign_layout",
	"detlab_roialign_forward",
	"detlab_roialign_backward",
	"detlab_conv_epilogue",
	"detlab_convbn_backward",
	"detlab_bias_grad",
}

// kernelParams gives each kernel's parameter list, one letter per
// parameter: 'p' a pointer (PTX .u64; pass a device address), 'i' a C int
// (.u32; pass int32), 'f' a C float (.f32; pass float32), 'd' a C double
// (.f64; pass float64). The launcher
// checks its arguments against it; the tests check it against the PTX and
// against kernels.h.
var kernelParams = map[string]string{
	"detlab_im2col":             "pp" + "iiiiiiiiiii", // C,H,W, KH,KW, SH,SW, PH,PW, OH,OW
	"detlab_col2im":             "pp" + "iiiiiiiiiii",
	"detlab_bias_add":           "ppiii",
	"detlab_channel_sum_add":    "ppiii",
	"detlab_channel_stats":      "piiipp",
	"detlab_channel_affine":     "ppiiippi",
	"detlab_bn_train_stats":     "piiipppp" + "ddpp",      // x, N,C,HW, gamma, beta, run_mean, run_var, momentum, eps, stats, affine
	"detlab_bn_backward_sums":   "ppppp" + "iiii" + "ppp", // x, y, dy, stats, gamma, N,C,HW, relu, dgamma, dbeta, coef
	"detlab_bn_backward_dx":     "pppppp" + "iiii",        // x, y, dy, stats, coef, dx, N,C,HW, relu
	"detlab_maxpool2d":          "ppp" + "iiiiiiiiiii",    // planes,H,W, KH,KW, SH,SW, PH,PW, OH,OW
	"detlab_maxpool2d_backward": "pppiiiii",
	"detlab_round_bf16":         "ppi",
	"detlab_round_fp16":         "ppi",
	"detlab_add":                "pppii",
	"detlab_relu":               "ppi",
	"detlab_relu_backward":      "pppi",
	"detlab_sgd_step":           "pppiffffii",
	"detlab_nonfinite":          "pip",
	"detlab_scale":              "pif",
	"detlab_nms_mask":           "pifp", // boxes, n, cut, mask
	"detlab_to_bf16":            "ppi",
	"detlab_to_fp16":            "ppi",
	"detlab_im2col_bf16":        "pp" + "iiiiiiiiiiiii", // N,C,H,W, KH,KW, SH,SW, PH,PW, OH,OW, ldn
	"detlab_im2col_fp16":        "pp" + "iiiiiiiiiiiii",
	"detlab_roialign_layout":    "ppiiiiiifii",      // rois, geom, K, H,W, OH,OW, ratio, scale, aligned, cap
	"detlab_roialign_forward":   "ppp" + "iiiiiiii", // x, geom, y, N,C,H,W, K, OH,OW, cap
	"detlab_roialign_backward":  "ppp" + "iiiiiiii", // dy, geom, dx, N,C,H,W, K, OH,OW, cap
	"detlab_conv_epilogue":      "pppp" + "iiii",    // y, scale, shift, residual, N,K,HW, relu
	"detlab_convbn_backward":    "ppppp" + "iiii",   // dy, y, scale, dc, dres, N,K,HW, relu
	"detlab_bias_grad":          "ppii",             // dy, db, rows, cols
}

// ptxParamKinds maps PTX parameter types to kernelParams letters.
var ptxParamKinds = map[string]byte{".u64": 'p', ".u32": 'i', ".f32": 'f', ".f64": 'd'}

// ptxEntries parses the kernel entry points of a PTX module: each
// `.entry name(.param .type name_param_0, ...)` becomes name -> its
// parameter letters as in kernelParams.
func ptxEntries(ptx string) (map[string]string, error) {
	entries := map[string]string{}
	rest := ptx
	for {
		i := strings.Index(rest, ".entry ")
		if i < 0 {
			break
		}
		rest = rest[i+len(".entry "):]
		open := strings.IndexByte(rest, '(')
		if open < 0 {
			return nil, fmt.Errorf("cuda: PTX: .entry without a parameter list")
		}
		name := strings.TrimSpace(rest[:open])
		if name == "" || strings.ContainsAny(name, " \t\n{};") {
			return nil, fmt.Errorf("cuda: PTX: malformed .entry name %q", name)
		}
		closing := strings.IndexByte(rest[open:], ')')
		if closing < 0 {
			return nil, fmt.Errorf("cuda: PTX: parameter list of %s is not closed", name)
		}
		list := strings.TrimSpace(rest[open+1 : open+closing])
		rest = rest[open+closing:]
		if _, dup := entries[name]; dup {
			return nil, fmt.Errorf("cuda: PTX: entry %s defined twice", name)
		}
		var kinds []byte
		if list != "" {
			for _, p := range strings.Split(list, ",") {
				f := strings.Fields(p)
				if len(f) != 3 || f[0] != ".param" {
					return nil, fmt.Errorf("cuda: PTX: %s: unsupported parameter %q", name, strings.TrimSpace(p))
				}
				k, ok := ptxParamKinds[f[1]]
				if !ok {
					return nil, fmt.Errorf("cuda: PTX: %s: unsupported parameter type %s", name, f[1])
				}
				kinds = append(kinds, k)
			}
		}
		entries[name] = string(kinds)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("cuda: PTX: no .entry found")
	}
	return entries, nil
}

// checkPTX reports whether ptx has exactly the kernels of kernelNames, each
// with the parameters kernelParams gives it: a stale or foreign module
// would otherwise be launched with arguments it does not expect.
func checkPTX(ptx string) error {
	entries, err := ptxEntries(ptx)
	if err != nil {
		return err
	}
	var problems []string
	for _, name := range kernelNames {
		got, ok := entries[name]
		switch {
		case !ok:
			problems = append(problems, "missing "+name)
		case got != kernelParams[name]:
			problems = append(problems, fmt.Sprintf("%s takes %q, the launcher passes %q", name, got, kernelParams[name]))
		}
	}
	var extra []string
	for name := range entries {
		if _, ok := kernelParams[name]; !ok {
			extra = append(extra, "unexpected entry "+name)
		}
	}
	slices.Sort(extra)
	problems = append(problems, extra...)
	if len(problems) > 0 {
		return fmt.Errorf("cuda: PTX does not match the kernel table: %s", strings.Join(problems, "; "))
	}
	return nil
}
