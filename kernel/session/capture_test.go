package session

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCaptureFDs runs a session with CaptureFDs in a child process (the
// capture takes the process's descriptors 1 and 2, which the test framework
// itself writes to) and checks that what compiled code and goroutines write
// to the descriptors reaches the cell's output.
func TestCaptureFDs(t *testing.T) {
	if os.Getenv("DETLAB_CAPTURE_CHILD") == "1" {
		captureChild()
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCaptureFDs$")
	cmd.Env = append(os.Environ(), "DETLAB_CAPTURE_CHILD=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var got map[string]string
	line := stderr.String()
	if i := strings.Index(line, "RESULT "); i >= 0 {
		line = line[i+len("RESULT "):]
	}
	if err := json.Unmarshal([]byte(strings.SplitN(line, "\n", 2)[0]), &got); err != nil {
		t.Fatalf("child said %q: %v", stderr.String(), err)
	}
	for k, want := range map[string]string{
		"cell1.stdout": "interpreted\nos.Stdout\n",
		"cell1.stderr": "compiled log to fd 2\n",
		"cell2.stdout": "from a goroutine\n",
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}
}

func captureChild() {
	s, err := New(Options{CaptureFDs: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	log := s.LogWriter()
	res := map[string]string{}
	r1 := &recorder{}
	// log.Default() is the compiled standard logger: it writes to the
	// process's descriptor 2, not through the interpreter.
	_, err = s.Execute(context.Background(), `import ("fmt"; "os"; "log")
fmt.Println("interpreted")
os.Stdout.WriteString("os.Stdout\n")
log.Default().SetFlags(0)
log.Default().Print("compiled log to fd 2")`, r1)
	if err != nil {
		fmt.Fprintln(log, "cell 1:", err)
	}
	res["cell1.stdout"], res["cell1.stderr"] = r1.out(), r1.errs()
	r2 := &recorder{}
	_, err = s.Execute(context.Background(), `import "time"
done := make(chan bool)
go func() { fmt.Println("from a goroutine"); done <- true }()
<-done
time.Sleep(10 * time.Millisecond)`, r2)
	if err != nil {
		fmt.Fprintln(log, "cell 2:", err)
	}
	res["cell2.stdout"] = r2.out()
	s.Close()
	b, _ := json.Marshal(res)
	time.Sleep(10 * time.Millisecond)
	fmt.Fprintf(os.Stderr, "RESULT %s\n", b)
}
