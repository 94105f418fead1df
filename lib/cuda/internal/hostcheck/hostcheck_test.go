package hostcheck

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

var (
	buildOnce sync.Once
	// drivers are the kernels built as is (32-bit indices where the work
	// fits) and with -DDETLAB_FORCE_I64 (64-bit indices everywhere);
	// launches alternate between them so both paths are checked.
	drivers   [2]string
	launches  atomic.Int64
	buildDir  string
	buildErr  error
	buildSkip string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// driver builds testdata/driver.cpp with the kernel sources once (in both
// index variants, concurrently) and returns the variant for this launch,
// or skips the test without g++.
func driver(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		gxx, err := exec.LookPath("g++")
		if err != nil {
			buildSkip = "no g++ (apt-get install g++): cannot compile the kernels for the CPU"
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "detlab-hostcheck-")
		if buildErr != nil {
			return
		}
		var wg sync.WaitGroup
		outs, errs := make([][]byte, 2), make([]error, 2)
		for v, define := range []string{"-DDETLAB_HOSTCHECK", "-DDETLAB_FORCE_I64"} {
			drivers[v] = filepath.Join(buildDir, fmt.Sprintf("driver%d", v))
			cmd := exec.Command(gxx, "-std=c++20", "-O1", "-ffp-contract=off", "-pthread", "-Wall", "-Wextra", define,
				"-I", filepath.Join("..", "..", "kernels"), "-o", drivers[v], filepath.Join("testdata", "driver.cpp"))
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[v], errs[v] = cmd.CombinedOutput()
			}()
		}
		wg.Wait()
		for v := range drivers {
			out, err := outs[v], errs[v]
			switch {
			case err != nil && bytes.Contains(out, []byte("barrier")):
				buildSkip = "g++ lacks C++20 <barrier>: " + string(out)
			case err != nil:
				buildErr = fmt.Errorf("g++: %v\n%s", err, out)
			case len(out) > 0:
				buildErr = fmt.Errorf("g++ warns about the kernel sources:\n%s", out)
			}
		}
	})
	if buildSkip != "" {
		t.Skip(buildSkip)
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return drivers[launches.Add(1)%2]
}

// launch runs kernel on the CPU as <<<grid, block>>> with the scalar
// arguments (floats as math.Float32bits) and one buffer per pointer
// argument (nil for NULL), and returns the buffers after the kernel.
func launch(t *testing.T, kernel string, grid, block int, scalars []int64, bufs ...[]byte) [][]byte {
	t.Helper()
	bin := driver(t)
	dir := t.TempDir()
	args := []string{kernel, strconv.Itoa(grid), strconv.Itoa(block)}
	for _, s := range scalars {
		args = append(args, strconv.FormatInt(s, 10))
	}
	args = append(args, "--")
	for i, b := range bufs {
		p := filepath.Join(dir, fmt.Sprintf("buf%d", i))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
	}
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(bin), args, err, out)
	}
	if bin == drivers[1] {
		t.Logf("%s ran with 64-bit indices (DETLAB_FORCE_I64)", kernel)
	}
	res := make([][]byte, len(bufs))
	for i := range bufs {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("buf%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		res[i] = b
	}
	return res
}

func f32b(v []float32) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, v)
	return b.Bytes()
}

func i32b(v []int32) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, v)
	return b.Bytes()
}

func bf32(t *testing.T, b []byte) []float32 {
	t.Helper()
	v := make([]float32, len(b)/4)
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, v); err != nil {
		t.Fatal(err)
	}
	return v
}

func bi32(t *testing.T, b []byte) []int32 {
	t.Helper()
	v := make([]int32, len(b)/4)
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, v); err != nil {
		t.Fatal(err)
	}
	return v
}

func bf64(t *testing.T, b []byte) []float64 {
	t.Helper()
	v := make([]float64, len(b)/8)
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, v); err != nil {
		t.Fatal(err)
	}
	return v
}

func fbits(f float32) int64 { return int64(math.Float32bits(f)) }

// same reports whether a and b are the same float32 (NaN matches NaN,
// +0 matches -0).
func same(a, b float32) bool { return a == b || (a != a && b != b) }

// checkExact fails on the first elements where got and want differ.
func checkExact(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range want {
		if !same(got[i], want[i]) {
			if bad < 5 {
				t.Errorf("%s[%d] = %v (%#08x), want %v (%#08x)", what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(want))
	}
}

func randn(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// smallGrid picks a launch with fewer threads than work items when it can,
// so the grid-stride loops take several turns.
func smallGrid(rng *rand.Rand, n int) (grid, block int) {
	block = []int{32, 64, 256}[rng.IntN(3)]
	grid = 1 + rng.IntN(3)
	if grid*block > n && n > 0 && rng.IntN(2) == 0 {
		block = 32
		grid = 1
	}
	return grid, block
}
