"""The Jupyter project's kernel conformance suite (jupyter_kernel_test) run
against the detlab kernel, plus a few protocol checks the suite lacks
(interrupt by message, stop_on_error, input_request).

Run by integration_test.go as
    JUPYTER_PATH=... DETLAB_KERNEL_NAME=... python3 -m unittest -v detlab_conformance
"""

import os
import time
import unittest

import jupyter_kernel_test

DISPLAY = 'import "github.com/detlab/detlab/kernel/display"\n'


class DetlabKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = os.environ.get("DETLAB_KERNEL_NAME", "detlab")
    language_name = "go"
    file_extension = ".go"

    code_hello_world = 'import "fmt"\nfmt.Println("hello, world")'
    code_stderr = 'import (\n\t"fmt"\n\t"os"\n)\nfmt.Fprintln(os.Stderr, "to stderr")'

    completion_samples = [
        {"text": "import \"strings\"\nstrings.TrimSp", "matches": {"TrimSpace"}},
    ]
    complete_code_samples = ["x := 1", 'import "fmt"\nfmt.Println(1)', "func f() int { return 1 }"]
    incomplete_code_samples = ["func f() {", "for i := 0; i < 3; i++ {", "x := []int{1,"]
    invalid_code_samples = ["x := )", "1 +* 2 }", "}"]

    code_generate_error = 'panic("boom")'
    code_execute_result = [
        {"code": "1+1", "result": "2"},
        {"code": "6*7", "result": "42"},
    ]
    code_display_data = [
        {"code": DISPLAY + 'display.HTML("<b>hi</b>")', "mime": "text/html"},
        {"code": DISPLAY + 'display.Markdown("*hi*")', "mime": "text/markdown"},
    ]
    code_history_pattern = "1?1"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = 'import "strings"\nstrings.TrimSpace'
    code_clear_output = DISPLAY + "display.Clear(false)"

    # --- checks the suite does not make -----------------------------------

    def test_detlab_interrupt_by_message(self):
        """interrupt_request on control stops a running cell, which reports
        an error, and the kernel keeps its state."""
        self.flush_channels()
        self.execute_helper("kept := 7")
        msg_id = self.kc.execute("for ctx.Err() == nil {\n}\n")
        time.sleep(0.5)
        self.km.interrupt_kernel()  # interrupt_mode "message": a control message
        reply = self.get_non_kernel_info_reply(timeout=20)
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        self.assertEqual(reply["content"]["status"], "error")
        self.flush_channels()
        reply, outputs = self.execute_helper("kept")
        self.assertEqual(reply["content"]["status"], "ok")
        results = [m for m in outputs if m["msg_type"] == "execute_result"]
        self.assertEqual(results[0]["content"]["data"]["text/plain"], "7")

    def test_detlab_stop_on_error_aborts_queue(self):
        self.flush_channels()
        first = self.kc.execute('import "time"\ntime.Sleep(300 * time.Millisecond)\npanic("first")')
        second = self.kc.execute("1+1")
        replies = {}
        while len(replies) < 2:
            r = self.kc.get_shell_msg(timeout=20)
            replies[r["parent_header"]["msg_id"]] = r["content"]["status"]
        self.assertEqual(replies[first], "error")
        self.assertEqual(replies[second], "aborted")
        self.flush_channels()

    def test_detlab_input_request(self):
        self.flush_channels()
        msg_id = self.kc.execute(
            'import "fmt"\nfmt.Print("name? ")\nvar s string\nfmt.Scanln(&s)\ns + "!"',
            allow_stdin=True)
        req = self.kc.get_stdin_msg(timeout=20)
        self.assertEqual(req["msg_type"], "input_request")
        self.kc.input("gopher")
        reply = self.get_non_kernel_info_reply(timeout=20)
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        self.flush_channels()

    def test_detlab_heartbeat_and_comm_info(self):
        self.assertTrue(self.kc.hb_channel.is_alive())
        msg_id = self.kc.comm_info()
        reply = self.get_non_kernel_info_reply(timeout=10)
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        self.assertEqual(reply["content"], {"status": "ok", "comms": {}})


if __name__ == "__main__":
    unittest.main()
