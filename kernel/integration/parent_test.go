package integration

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/detlab/detlab/kernel/wire/wiretest"
)

// TestKernelExitsWhenLauncherDies starts `detlab kernel` from a shell that
// names itself in JPY_PARENT_PID, as jupyter_client does, waits until the
// kernel serves, then kills the shell with SIGKILL (a front end that dies
// without shutting its kernels down): the orphaned kernel must exit by
// itself instead of living on with its ports and memory.
func TestKernelExitsWhenLauncherDies(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test skipped in -short mode")
	}
	bin := detlab(t)
	info, conn := connectionFile(t)
	launcher := exec.Command("sh", "-c", `JPY_PARENT_PID=$$ "$0" kernel "$1" & echo $!; wait`, bin, conn)
	launcher.Stderr = os.Stderr
	out, err := launcher.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := launcher.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		launcher.Process.Kill()
		t.Fatalf("reading the kernel's PID: %v", err)
	}
	kpid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		launcher.Process.Kill()
		t.Fatalf("kernel PID %q: %v", line, err)
	}
	t.Cleanup(func() { syscall.Kill(kpid, syscall.SIGKILL) })

	c, err := wiretest.Dial(context.Background(), info)
	if err != nil {
		launcher.Process.Kill()
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitReady(30 * time.Second); err != nil {
		launcher.Process.Kill()
		t.Fatal(err)
	}
	if err := launcher.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	launcher.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for !processGone(kpid) {
		if time.Now().After(deadline) {
			t.Fatalf("kernel %d still running 15 s after its launcher was killed", kpid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// processGone reports whether pid has exited: no such process, or a zombie
// that nobody has reaped yet (an orphan's new parent may not reap).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return os.IsNotExist(err)
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}
