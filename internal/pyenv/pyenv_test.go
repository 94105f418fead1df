package pyenv

import (
	"os/exec"
	"slices"
	"testing"
)

func TestCandidates(t *testing.T) {
	cases := []struct {
		env  string
		want []string
	}{
		{"", []string{"python3", "/usr/bin/python3"}},
		{"/opt/py/bin/python", []string{"/opt/py/bin/python"}},
	}
	for _, c := range cases {
		t.Setenv("DETLAB_PYTHON", c.env)
		if got := Candidates(); !slices.Equal(got, c.want) {
			t.Errorf("DETLAB_PYTHON=%q: candidates %v, want %v", c.env, got, c.want)
		}
	}
}

func TestFind(t *testing.T) {
	t.Setenv("DETLAB_PYTHON", "")
	if Find("detlab_no_such_module_xyz") != "" {
		t.Error("found a Python importing a module that does not exist")
	}
	t.Setenv("DETLAB_PYTHON", "/nonexistent/python3")
	if Find("sys") != "" {
		t.Error("found a Python at a path that does not exist")
	}
	t.Setenv("DETLAB_PYTHON", "")
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 on PATH")
	}
	if py := Find("sys", "os"); py != "python3" {
		t.Errorf("Find(sys, os) = %q, want python3 (first candidate)", py)
	}
}
