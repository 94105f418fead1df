package kernelspec

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestInstallPrefix(t *testing.T) {
	prefix := t.TempDir()
	dir, err := Install(Options{Exe: "/opt/detlab/bin/detlab", Where: Prefix, Prefix: prefix, Name: "go-test"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(prefix, "share", "jupyter", "kernels", "go-test"); dir != want {
		t.Fatalf("dir %s, want %s", dir, want)
	}
	b, err := os.ReadFile(filepath.Join(dir, "kernel.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	argv, _ := spec["argv"].([]any)
	if len(argv) != 3 || argv[0] != "/opt/detlab/bin/detlab" || argv[1] != "kernel" || argv[2] != "{connection_file}" ||
		spec["display_name"] != "Go (detlab)" || spec["language"] != "go" || spec["interrupt_mode"] != "message" {
		t.Fatalf("kernel.json %s", b)
	}
	for _, tc := range []struct {
		name string
		size int
	}{{"logo-32x32.png", 32}, {"logo-64x64.png", 64}} {
		b, err := os.ReadFile(filepath.Join(dir, tc.name))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Width != tc.size || cfg.Height != tc.size {
			t.Fatalf("%s: %v %dx%d", tc.name, err, cfg.Width, cfg.Height)
		}
	}
}

func TestDir(t *testing.T) {
	t.Setenv("JUPYTER_DATA_DIR", "/data/jup")
	if d, err := Dir(Options{Where: User}); err != nil || d != "/data/jup/kernels/detlab" {
		t.Fatalf("user dir %s %v", d, err)
	}
	for _, o := range []Options{{Where: Prefix}, {Where: User, Name: "bad/name"}, {Where: User, Name: "a b"}, {Where: Where(9)}} {
		if _, err := Dir(o); err == nil {
			t.Errorf("Dir(%+v) accepted", o)
		}
	}
	if _, err := Install(Options{Exe: "relative/detlab", Where: Prefix, Prefix: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("relative exe accepted: %v", err)
	}
	if _, err := exec.LookPath("python3"); err == nil {
		d, err := Dir(Options{Where: SysPrefix})
		if err != nil || !strings.HasSuffix(d, filepath.Join("share", "jupyter", "kernels", "detlab")) {
			t.Errorf("sys-prefix dir %s %v", d, err)
		}
	}
	if _, err := Dir(Options{Where: SysPrefix, Python: "/nonexistent/python"}); err == nil {
		t.Error("missing python accepted")
	}
}
