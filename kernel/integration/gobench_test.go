package integration

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/detlab/detlab/kernel/wire"
	"github.com/detlab/detlab/kernel/wire/wiretest"
)

// freePorts returns n TCP ports free on 127.0.0.1 now.
func freePorts(t testing.TB, n int) []int {
	var ls []net.Listener
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// startKernel runs `detlab kernel` on a fresh connection file and returns a
// connected client, the process, when the process was started, and a func
// that stops both (also run at cleanup).
func startKernel(t testing.TB) (*wiretest.Client, *exec.Cmd, time.Time, func()) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test skipped in -short mode")
	}
	bin := detlab(t)
	info, conn := connectionFile(t)
	cmd := exec.Command(bin, "kernel", conn)
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var c *wiretest.Client
	stop := func() {
		once.Do(func() {
			if c != nil {
				c.Close()
			}
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	t.Cleanup(stop)
	c, err := wiretest.Dial(context.Background(), info)
	if err != nil {
		t.Fatal(err)
	}
	return c, cmd, start, stop
}

// connectionFile writes a connection file for a kernel on free loopback
// ports and returns its contents and path.
func connectionFile(t testing.TB) (wire.ConnectionInfo, string) {
	t.Helper()
	p := freePorts(t, 5)
	info := wire.ConnectionInfo{Transport: "tcp", IP: "127.0.0.1", ShellPort: p[0], ControlPort: p[1],
		StdinPort: p[2], IOPubPort: p[3], HBPort: p[4], Key: wire.NewID(), SignatureScheme: "hmac-sha256"}
	b, _ := json.Marshal(info)
	conn := filepath.Join(t.TempDir(), "kernel.json")
	if err := os.WriteFile(conn, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return info, conn
}

// TestKernelProcess drives the real `detlab kernel` process over the wire:
// kernel_info, an execute, an interrupt of a running loop, and a shutdown
// after which the process exits by itself.
func TestKernelProcess(t *testing.T) {
	c, cmd, _, _ := startKernel(t)
	if err := c.WaitReady(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	rep, outs, err := c.Execute("x := 40\nx + 2", nil, 30*time.Second)
	if err != nil || wiretest.Content(rep)["status"] != "ok" {
		t.Fatalf("execute: %v %v", rep, err)
	}
	found := false
	for _, m := range outs {
		if m.Type() == "execute_result" {
			found = wiretest.Content(m)["data"].(map[string]any)["text/plain"] == "42"
		}
	}
	if !found {
		t.Fatalf("no execute_result 42 in %d messages", len(outs))
	}
	req, _ := c.Request(wire.Shell, "execute_request", map[string]any{"code": "for ctx.Err() == nil {\n}", "stop_on_error": false})
	time.Sleep(300 * time.Millisecond)
	ireq, _ := c.Request(wire.Control, "interrupt_request", map[string]any{})
	if _, err := c.Reply(wire.Control, ireq, 10*time.Second); err != nil {
		t.Fatalf("interrupt_reply while a cell runs: %v", err)
	}
	rep, err = c.Reply(wire.Shell, req, 20*time.Second)
	if err != nil || wiretest.Content(rep)["status"] != "error" {
		t.Fatalf("interrupted cell: %v %v", rep, err)
	}
	// A cell printing without newline until interrupted: output streams
	// while it runs, the interrupt is answered, the kernel keeps serving.
	req, _ = c.Request(wire.Shell, "execute_request", map[string]any{"code": "import \"fmt\"\nfor ctx.Err() == nil {\n\tfmt.Print(\"x\")\n}", "stop_on_error": false})
	streamed := 0
	deadline := time.Now().Add(20 * time.Second)
	for streamed < 1<<20 && time.Now().Before(deadline) {
		m, err := c.Recv(wire.IOPub, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m.Type() == "stream" && wiretest.ParentID(m) == req.Header.MsgID {
			streamed += len(wiretest.Content(m)["text"].(string))
		}
	}
	if streamed < 1<<20 {
		t.Fatalf("only %d bytes streamed while the cell ran", streamed)
	}
	ireq, _ = c.Request(wire.Control, "interrupt_request", map[string]any{})
	if _, err := c.Reply(wire.Control, ireq, 10*time.Second); err != nil {
		t.Fatalf("interrupt_reply while printing: %v", err)
	}
	if rep, err = c.Reply(wire.Shell, req, 20*time.Second); err != nil || wiretest.Content(rep)["status"] != "error" {
		t.Fatalf("interrupted printing cell: %v %v", rep, err)
	}
	if rep, _, err := c.Execute("1+1", nil, 20*time.Second); err != nil || wiretest.Content(rep)["status"] != "ok" {
		t.Fatalf("after the printing cell: %v %v", rep, err)
	}

	sreq, _ := c.Request(wire.Control, "shutdown_request", map[string]any{"restart": false})
	if _, err := c.Reply(wire.Control, sreq, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("kernel exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("kernel did not exit after shutdown_reply")
	}
}

// BenchmarkKernelRoundTrip: execute("1+1") sent -> idle status, against the
// real `detlab kernel` process, from a Go client (no Python overhead).
func BenchmarkKernelRoundTrip(b *testing.B) {
	c, _, _, _ := startKernel(b)
	if err := c.WaitReady(30 * time.Second); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		c.Execute("1+1", nil, 10*time.Second)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, err := c.Request(wire.Shell, "execute_request", map[string]any{"code": "1+1"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Outputs(req, 10*time.Second); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Reply(wire.Shell, req, 10*time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStartToKernelInfo: process start -> first kernel_info_reply.
func BenchmarkStartToKernelInfo(b *testing.B) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		c, _, start, stop := startKernel(b)
		req, err := c.Request(wire.Shell, "kernel_info_request", map[string]any{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Reply(wire.Shell, req, 30*time.Second); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		stop()
	}
	b.ReportMetric(float64(total.Microseconds())/1e3/float64(b.N), "ms-start-to-kernel-info")
}
