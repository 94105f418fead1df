// Package kernelspec writes the Jupyter kernelspec that makes the detlab
// kernel appear in Jupyter: kernel.json (the absolute argv of the detlab
// binary, display name, language, interrupt by message) and the logos, in the
// user's, the Python environment's or a given prefix's kernels directory.
//
//	dir, err := kernelspec.Install(kernelspec.Options{Exe: exe, Where: kernelspec.User})
package kernelspec

//go:generate go run genlogo.go

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

var (
	//go:embed logo-32x32.png
	logo32 []byte
	//go:embed logo-64x64.png
	logo64 []byte
)

// DefaultName is the kernel's name (the directory under kernels/).
const DefaultName = "detlab"

// DisplayName is what Jupyter's launcher shows.
const DisplayName = "Go (detlab)"

// Spec is kernel.json.
type Spec struct {
	Argv          []string          `json:"argv"`
	DisplayName   string            `json:"display_name"`
	Language      string            `json:"language"`
	InterruptMode string            `json:"interrupt_mode"`
	Env           map[string]string `json:"env,omitempty"`
	Metadata      map[string]any    `json:"metadata,omitempty"`
}

// NewSpec returns the kernelspec that starts exe as the kernel.
func NewSpec(exe string) Spec {
	return Spec{
		Argv:          []string{exe, "kernel", "{connection_file}"},
		DisplayName:   DisplayName,
		Language:      "go",
		InterruptMode: "message",
		Metadata:      map[string]any{"debugger": false},
	}
}

// Where says which Jupyter data directory receives the kernelspec.
type Where int

const (
	// User is the user's Jupyter data dir ($JUPYTER_DATA_DIR, else
	// $XDG_DATA_HOME/jupyter or ~/.local/share/jupyter on Linux,
	// ~/Library/Jupyter on macOS, %APPDATA%\jupyter on Windows).
	User Where = iota
	// SysPrefix is sys.prefix/share/jupyter of the python3 on PATH (a
	// virtual environment or conda environment when one is active).
	SysPrefix
	// Prefix is Options.Prefix/share/jupyter.
	Prefix
)

// Options say what to install where.
type Options struct {
	Exe    string // absolute path of the detlab binary; "" = os.Executable()
	Where  Where
	Prefix string // for Where == Prefix
	Name   string // kernel name; "" = DefaultName
	Python string // interpreter asked for sys.prefix; "" = "python3"
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// Dir returns the kernelspec directory opts designate, .../share/jupyter/kernels/NAME.
func Dir(opts Options) (string, error) {
	name := opts.Name
	if name == "" {
		name = DefaultName
	}
	if !validName.MatchString(name) {
		return "", fmt.Errorf("kernelspec: kernel name %q: use letters, digits, '.', '_' and '-' only", name)
	}
	var data string
	switch opts.Where {
	case User:
		d, err := userDataDir()
		if err != nil {
			return "", err
		}
		data = d
	case SysPrefix:
		py := opts.Python
		if py == "" {
			py = "python3"
		}
		out, err := exec.Command(py, "-c", "import sys; print(sys.prefix)").Output()
		if err != nil {
			return "", fmt.Errorf("kernelspec: finding sys.prefix with %s: %w", py, err)
		}
		data = filepath.Join(strings.TrimSpace(string(out)), "share", "jupyter")
	case Prefix:
		if opts.Prefix == "" {
			return "", errors.New("kernelspec: --prefix needs a directory")
		}
		p, err := filepath.Abs(opts.Prefix)
		if err != nil {
			return "", fmt.Errorf("kernelspec: %w", err)
		}
		data = filepath.Join(p, "share", "jupyter")
	default:
		return "", fmt.Errorf("kernelspec: unknown location %d", opts.Where)
	}
	return filepath.Join(data, "kernels", name), nil
}

func userDataDir() (string, error) {
	if d := os.Getenv("JUPYTER_DATA_DIR"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("kernelspec: %w", err)
	}
	switch runtime.GOOS {
	case "darwin":
		return filepath.Join(home, "Library", "Jupyter"), nil
	case "windows":
		if a := os.Getenv("APPDATA"); a != "" {
			return filepath.Join(a, "jupyter"), nil
		}
		return filepath.Join(home, "AppData", "Roaming", "jupyter"), nil
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "jupyter"), nil
	}
	return filepath.Join(home, ".local", "share", "jupyter"), nil
}

// Executable returns the absolute, symlink-free path of the running binary.
// It refuses a binary built by `go run` in a temporary directory, which would
// vanish and leave a kernelspec pointing nowhere.
func Executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("kernelspec: %w", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	if strings.Contains(filepath.ToSlash(exe), "/go-build") {
		return "", fmt.Errorf("kernelspec: %s is a temporary `go run` binary; build it with `go install ./kernel/cmd/detlab` and run that", exe)
	}
	return exe, nil
}

// Install writes kernel.json and the logos and returns the directory.
func Install(opts Options) (string, error) {
	exe := opts.Exe
	if exe == "" {
		var err error
		if exe, err = Executable(); err != nil {
			return "", err
		}
	}
	if !filepath.IsAbs(exe) {
		return "", fmt.Errorf("kernelspec: executable path %q is not absolute", exe)
	}
	dir, err := Dir(opts)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("kernelspec: %w", err)
	}
	b, err := json.MarshalIndent(NewSpec(exe), "", "  ")
	if err != nil {
		return "", fmt.Errorf("kernelspec: %w", err)
	}
	files := map[string][]byte{"kernel.json": append(b, '\n'), "logo-32x32.png": logo32, "logo-64x64.png": logo64}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			return "", fmt.Errorf("kernelspec: %w", err)
		}
	}
	return dir, nil
}
