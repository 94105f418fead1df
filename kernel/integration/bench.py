"""Latency and load figures for the detlab kernel through jupyter_client.

Usage: python3 bench.py KERNEL_NAME [ROUNDTRIPS] [LOAD]

Prints JSON: start_to_kernel_info_ms, roundtrip_ms (median, p90, min) of
execute_request("1+1") sent -> status idle through BlockingKernelClient,
roundtrip_raw_ms the same through jupyter_client's Session on plain pyzmq
sockets, and for LOAD back-to-back executes
the RSS before, after them and after 10,000 more (a leak grows in both
batches; a one-off high-water mark only in the first), and whether every reply
came back, in order, with consecutive execution counts. Exits 1 when
a reply is lost or out of order (a correctness failure, not a timing one).
"""

import json
import statistics
import sys
import threading
import time

from jupyter_client.manager import KernelManager


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def raw_roundtrips(km, rounds):
    """The same round trip with jupyter_client's Session (signing, framing)
    over plain blocking pyzmq sockets, without the BlockingKernelClient's
    per-call event-loop machinery."""
    import zmq
    from jupyter_client.session import Session

    info = km.get_connection_info()
    sess = Session(key=info["key"], signature_scheme=info["signature_scheme"])
    ctx = zmq.Context()
    shell = ctx.socket(zmq.DEALER)
    shell.connect(f"tcp://{info['ip']}:{info['shell_port']}")
    iopub = ctx.socket(zmq.SUB)
    iopub.setsockopt(zmq.SUBSCRIBE, b"")
    iopub.connect(f"tcp://{info['ip']}:{info['iopub_port']}")
    time.sleep(0.5)  # let the subscription reach the kernel

    def one():
        content = {"code": "1+1", "silent": False, "store_history": True,
                   "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
        t = time.perf_counter()
        msg = sess.send(shell, "execute_request", content)
        while True:
            _, m = sess.recv(iopub, mode=0)
            if (m["parent_header"].get("msg_id") == msg["header"]["msg_id"] and m["msg_type"] == "status"
                    and m["content"]["execution_state"] == "idle"):
                break
        dt = (time.perf_counter() - t) * 1e3
        _, reply = sess.recv(shell, mode=0)
        assert reply["parent_header"]["msg_id"] == msg["header"]["msg_id"]
        return dt

    for _ in range(20):
        one()
    ts = [one() for _ in range(rounds)]
    shell.close(0)
    iopub.close(0)
    ctx.term()
    return ts


def main():
    name = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    load = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    out = {}

    t0 = time.perf_counter()
    km = KernelManager(kernel_name=name)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.kernel_info()
    kc.get_shell_msg(timeout=60)
    out["start_to_kernel_info_ms"] = (time.perf_counter() - t0) * 1e3
    kc.wait_for_ready(timeout=60)
    pid = km.provisioner.process.pid if getattr(km, "provisioner", None) else km.kernel.pid

    def roundtrip(code):
        t = time.perf_counter()
        msg_id = kc.execute(code)
        while True:
            m = kc.get_iopub_msg(timeout=30)
            if (m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "status"
                    and m["content"]["execution_state"] == "idle"):
                break
        dt = (time.perf_counter() - t) * 1e3
        reply = kc.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id, "reply to another request"
        assert reply["content"]["status"] == "ok", reply["content"]
        return dt

    for _ in range(20):
        roundtrip("1+1")
    ts = sorted(roundtrip("1+1") for _ in range(rounds))
    out["roundtrip_ms"] = {"median": statistics.median(ts), "p90": ts[int(0.9 * len(ts))], "min": ts[0], "n": rounds}
    ts = sorted(raw_roundtrips(km, rounds))
    out["roundtrip_raw_ms"] = {"median": statistics.median(ts), "p90": ts[int(0.9 * len(ts))], "min": ts[0], "n": rounds}

    if load:
        # Drain iopub in a thread so that the kernel is never held up by us.
        stop = threading.Event()
        iopub_count = [0]

        def drain():
            while not stop.is_set():
                try:
                    kc.get_iopub_msg(timeout=0.2)
                    iopub_count[0] += 1
                except Exception:
                    pass

        th = threading.Thread(target=drain, daemon=True)
        th.start()
        for _ in range(1000):  # warm up allocations before the baseline
            kc.execute("1+1")
        for _ in range(1000):
            kc.get_shell_msg(timeout=60)
        def settle():
            # Let the iopub backlog drain (the kernel queues what we have not
            # read yet) before measuring the steady state.
            last = -1
            while last != iopub_count[0]:
                last = iopub_count[0]
                time.sleep(1.0)
            return rss_kib(pid)

        def batch():
            t = time.perf_counter()
            ids = [kc.execute("1+1") for _ in range(load)]
            got, counts = [], []
            for _ in range(load):
                r = kc.get_shell_msg(timeout=120)
                got.append(r["parent_header"]["msg_id"])
                counts.append(r["content"].get("execution_count"))
            elapsed = time.perf_counter() - t
            ok = got == ids and all(b == a + 1 for a, b in zip(counts, counts[1:]))
            return elapsed, ok

        rss0 = settle()
        e1, ok1 = batch()
        rss1 = settle()
        e2, ok2 = batch()
        rss2 = settle()
        stop.set()
        th.join()
        out["load"] = {"n": load, "seconds": [e1, e2], "rss_kib": [rss0, rss1, rss2],
                       "rss_growth_kib": [rss1 - rss0, rss2 - rss1],
                       "all_replies_in_order_and_counted": ok1 and ok2}

    kc.stop_channels()
    km.shutdown_kernel(now=False)
    print(json.dumps(out, indent=1))
    if load and not out["load"]["all_replies_in_order_and_counted"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
