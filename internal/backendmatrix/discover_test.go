package backendmatrix

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// goldenImport is the package through which tests reach ../shared/golden.
const goldenImport = "github.com/detlab/detlab/internal/golden"

// goldenReaders are the internal/golden functions that open a golden file;
// a test calling one of them, directly or through helpers of its package,
// is a parity test.
var goldenReaders = map[string]bool{"Load": true, "Path": true, "Dir": true, "SharedDir": true}

// parityTests returns, per package directory under root (recursively),
// the sorted names of the top-level tests that read golden files.
// Directories without such tests are left out.
func parityTests(root string) (map[string][]string, error) {
	dirs := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, "_test.go") {
			dirs[filepath.Dir(p)] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for dir := range dirs {
		names, err := parityTestsInDir(dir)
		if err != nil {
			return nil, err
		}
		if len(names) > 0 {
			out[dir] = names
		}
	}
	return out, nil
}

// parityTestsInDir parses the test files of one package directory (both
// the package and its _test package, which share a test binary) and
// returns the top-level tests that reach a golden reader.
func parityTestsInDir(dir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	// Functions are keyed by package name and function name: a package
	// and its _test package may both declare a helper of the same name.
	type key struct{ pkg, name string }
	bodies := map[key]*ast.FuncDecl{}
	direct := map[key]bool{}
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		f, err := parser.ParseFile(fset, p, src, 0)
		if err != nil {
			return nil, err
		}
		goldenName := ""
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); path == goldenImport {
				goldenName = "golden"
				if imp.Name != nil {
					goldenName = imp.Name.Name
				}
			}
		}
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || fd.Body == nil {
				continue
			}
			k := key{f.Name.Name, fd.Name.Name}
			bodies[k] = fd
			if goldenName == "" {
				continue
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == goldenName && goldenReaders[sel.Sel.Name] {
					direct[k] = true
				}
				return true
			})
		}
	}
	// Propagate through calls to functions of the same package until
	// nothing changes.
	uses := direct
	for changed := true; changed; {
		changed = false
		for k, fd := range bodies {
			if uses[k] {
				continue
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				if id, ok := n.(*ast.Ident); ok && uses[key{k.pkg, id.Name}] {
					uses[k], changed = true, true
					return false
				}
				return true
			})
		}
	}
	var tests []string
	for k, fd := range bodies {
		if uses[k] && isTest(fd) {
			tests = append(tests, k.name)
		}
	}
	sort.Strings(tests)
	return tests, nil
}

// isTest reports whether fd is a top-level func TestXxx(t *testing.T).
func isTest(fd *ast.FuncDecl) bool {
	name := fd.Name.Name
	if !strings.HasPrefix(name, "Test") || name == "TestMain" {
		return false
	}
	if r, _ := utf8.DecodeRuneInString(name[len("Test"):]); unicode.IsLower(r) {
		return false // Testfoo is not a test
	}
	params := fd.Type.Params.List
	return len(params) == 1 && len(params[0].Names) <= 1 && types(params[0].Type) == "*testing.T"
}

// types renders a parameter type expression such as *testing.T.
func types(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return "*" + types(e.X)
	case *ast.SelectorExpr:
		return types(e.X) + "." + e.Sel.Name
	case *ast.Ident:
		return e.Name
	}
	return ""
}

func TestParityTestsInDir(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a_test.go": `package p

import (
	"testing"

	"github.com/detlab/detlab/internal/golden"
)

func load(t *testing.T) { golden.Load(t, "x.safetensors") }
func viaHelper(t *testing.T) { load(t) }

func TestDirect(t *testing.T)     { golden.Path(t, "x") }
func TestTwoHops(t *testing.T)    { viaHelper(t) }
func TestInClosure(t *testing.T)  { t.Run("s", func(t *testing.T) { load(t) }) }
func TestUnrelated(t *testing.T)  { _ = 1 }
func Testlower(t *testing.T)      { load(t) }
func TestBench(b *testing.B)      { load(nil) }
func BenchmarkX(b *testing.B)     { load(nil) }
`,
		"b_test.go": `package p_test

import (
	"testing"

	g "github.com/detlab/detlab/internal/golden"
)

func load(t *testing.T) {} // same name, other package: reads nothing

func TestRenamedImport(t *testing.T) { g.Dir() }
func TestExternalHelper(t *testing.T) { load(t) }
`,
		"c_test.go": `package p

import "testing"

// golden here is a local variable, not the package.
func TestShadow(t *testing.T) { golden := struct{ Load int }{}; _ = golden.Load }
`,
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := parityTestsInDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"TestDirect", "TestInClosure", "TestRenamedImport", "TestTwoHops"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("parityTestsInDir = %v, want %v", got, want)
	}
}
