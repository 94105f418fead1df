package cuda

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// installToolkit is what a test lacking nvcc or ptxas asks for.
const installToolkit = "install nvidia-cuda-toolkit (Debian non-free)"

// ptxHeader returns the value of a "// key: value" line of the generated
// PTX's header.
func ptxHeader(t *testing.T, key string) string {
	t.Helper()
	for _, line := range strings.Split(kernelsPTX, "\n") {
		if !strings.HasPrefix(line, "//") {
			break
		}
		if v, ok := strings.CutPrefix(line, "// "+key+": "); ok {
			return v
		}
	}
	t.Fatalf("ptx/kernels.ptx has no %q header line: regenerate with go generate ./lib/cuda", key)
	return ""
}

func TestPTXMatchesKernelTable(t *testing.T) {
	if err := checkPTX(kernelsPTX); err != nil {
		t.Fatal(err)
	}
	if len(kernelNames) != len(kernelParams) {
		t.Fatalf("kernelNames has %d kernels, kernelParams %d", len(kernelNames), len(kernelParams))
	}
	for _, name := range kernelNames {
		if _, ok := kernelParams[name]; !ok {
			t.Errorf("%s has no kernelParams entry", name)
		}
	}
}

func TestPTXEntries(t *testing.T) {
	const two = `.visible .entry a(
	.param .u64 a_param_0,
	.param .u32 a_param_1,
	.param .f32 a_param_2
)
{ ret; }
.visible .entry b()
{ ret; }
`
	tests := []struct {
		name, ptx string
		want      map[string]string
		err       string
	}{
		{"two entries", two, map[string]string{"a": "pif", "b": ""}, ""},
		{"no entry", ".version 7.8\n.target sm_80\n", nil, "no .entry"},
		{"unclosed", ".entry a(\n.param .u64 a_param_0,\n", nil, "not closed"},
		{"no list", ".entry a\n{ ret; }", nil, "without a parameter list"},
		{"double type", ".entry a(.param .f64 a_param_0)", map[string]string{"a": "d"}, ""},
		{"half type", ".entry a(.param .f16 a_param_0)", nil, "unsupported parameter type .f16"},
		{"struct param", ".entry a(.param .align 8 .b8 a_param_0[16])", nil, "unsupported parameter"},
		{"duplicate", ".entry a()\n.entry a()", nil, "defined twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ptxEntries(tc.ptx)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheckPTXNamesMismatch(t *testing.T) {
	// The real module with one kernel's parameter list changed and one
	// foreign kernel added must be refused, naming both.
	bad := strings.Replace(kernelsPTX, ".param .f32 detlab_scale_param_2", ".param .u32 detlab_scale_param_2", 1)
	bad += "\n.visible .entry detlab_foreign(\n)\n{ ret; }\n"
	err := checkPTX(bad)
	if err == nil {
		t.Fatal("checkPTX accepted a module that does not match the table")
	}
	for _, want := range []string{`detlab_scale takes "pii"`, "unexpected entry detlab_foreign"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// cDecl matches one kernel declaration of kernels.h.
var cDecl = regexp.MustCompile(`DETLAB_GLOBAL\s+void\s+(\w+)\s*\(([^)]*)\)\s*;`)

// cParamKind maps a C parameter declaration to its kernelParams letter.
func cParamKind(decl string) (byte, error) {
	f := strings.Fields(strings.ReplaceAll(decl, "*", " * "))
	if len(f) < 2 {
		return 0, fmt.Errorf("parameter %q has no name", decl)
	}
	typ := strings.Join(f[:len(f)-1], " ")
	switch {
	case strings.HasSuffix(typ, "*"):
		return 'p', nil
	case typ == "int":
		return 'i', nil
	case typ == "float":
		return 'f', nil
	case typ == "double":
		return 'd', nil
	}
	return 0, fmt.Errorf("parameter %q: type %q is not a pointer, int, float or double", decl, typ)
}

func TestKernelsHeaderMatchesTable(t *testing.T) {
	h, err := os.ReadFile(filepath.Join("kernels", "kernels.h"))
	if err != nil {
		t.Fatal(err)
	}
	decls := cDecl.FindAllStringSubmatch(string(h), -1)
	var names []string
	for _, d := range decls {
		name := d[1]
		names = append(names, name)
		var kinds []byte
		for _, p := range strings.Split(d[2], ",") {
			k, err := cParamKind(p)
			if err != nil {
				t.Fatalf("kernels.h: %s: %v", name, err)
			}
			kinds = append(kinds, k)
		}
		if want := kernelParams[name]; string(kinds) != want {
			t.Errorf("kernels.h declares %s as %q, kernelParams says %q", name, kinds, want)
		}
	}
	if !slices.Equal(names, kernelNames) {
		t.Errorf("kernels.h declares %v,\nkernelNames lists %v", names, kernelNames)
	}
}

// sourcesHash mirrors gen's: SHA-256 over the .cu, .cuh and .h files of
// dir in name order, each as name NUL length NUL bytes.
func sourcesHash(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for _, e := range entries {
		if e.IsDir() || !slices.Contains([]string{".cu", ".cuh", ".h"}, filepath.Ext(e.Name())) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", e.Name(), len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestPTXSourcesHash needs no toolkit: the PTX records the hash of the
// sources it was compiled from.
func TestPTXSourcesHash(t *testing.T) {
	if got, want := ptxHeader(t, "sources sha256"), sourcesHash(t, "kernels"); got != want {
		t.Fatalf("ptx/kernels.ptx was generated from other sources (sha256 %s, kernels/ now %s): run go generate ./lib/cuda", got, want)
	}
}

// nvccRelease returns the installed nvcc's release line, or skips.
func nvccRelease(t *testing.T) string {
	t.Helper()
	nvcc, err := exec.LookPath("nvcc")
	if err != nil {
		t.Skip("no nvcc: " + installToolkit)
	}
	out, err := exec.Command(nvcc, "--version").Output()
	if err != nil {
		t.Fatalf("nvcc --version: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Cuda compilation tools") {
			return strings.TrimSpace(line)
		}
	}
	t.Fatalf("nvcc --version printed no release line:\n%s", out)
	return ""
}

// TestPTXUpToDate regenerates the PTX and compares it byte for byte with
// the committed one, when the installed nvcc is the recorded one (another
// nvcc writes other, equally valid, PTX).
func TestPTXUpToDate(t *testing.T) {
	have := nvccRelease(t)
	if rec := ptxHeader(t, "nvcc"); rec != have {
		t.Skipf("ptx/kernels.ptx was generated by %q, the installed nvcc is %q: not comparing", rec, have)
	}
	if testing.Short() {
		t.Skip("-short: not running nvcc")
	}
	out := filepath.Join(t.TempDir(), "kernels.ptx")
	cmd := exec.Command("go", "run", "./gen", "-o", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./gen: %v\n%s", err, msg)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte(kernelsPTX)) {
		t.Fatal("ptx/kernels.ptx is out of date with kernels/: run go generate ./lib/cuda")
	}
}

// TestPTXAssembles runs ptxas on the module for the GPUs detlab targets.
func TestPTXAssembles(t *testing.T) {
	ptxas, err := exec.LookPath("ptxas")
	if err != nil {
		t.Skip("no ptxas: " + installToolkit)
	}
	for _, arch := range []string{"sm_80", "sm_90"} {
		t.Run(arch, func(t *testing.T) {
			cmd := exec.Command(ptxas, "-arch="+arch, "-o", filepath.Join(t.TempDir(), "k.cubin"), filepath.Join("ptx", "kernels.ptx"))
			msg, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("ptxas -arch=%s: %v\n%s", arch, err, msg)
			}
			if len(bytes.TrimSpace(msg)) > 0 {
				t.Errorf("ptxas -arch=%s warns:\n%s", arch, msg)
			}
		})
	}
}

// TestPTXNoFusedFloat32 guards the kernels' bit-for-bit agreement with the
// Go CPU code, which does not fuse a*b+c on amd64: nvcc contracts float32
// products and sums into FMAs unless written with __fmul_rn/__fadd_rn
// (DETLAB_MUL/DETLAB_ADD in kernels/ops.h).
func TestPTXNoFusedFloat32(t *testing.T) {
	for _, op := range []string{"fma.rn.f32", "fma.rn.ftz.f32", "mad.f32", "mad.rn.f32"} {
		if n := strings.Count(kernelsPTX, op); n > 0 {
			t.Errorf("ptx/kernels.ptx has %d %s: write float32 arithmetic with DETLAB_MUL/DETLAB_ADD", n, op)
		}
	}
}
