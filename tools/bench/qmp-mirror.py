#!/usr/bin/env python3
"""qmp-mirror.py: one live mirror of a qemu-storage-daemon block node, driven over QMP.

Connects to the daemon's QMP socket (a Unix socket: --chardev socket,server=on plus
--monitor), adds the target file as a raw node, starts `blockdev-mirror` (sync full,
the given copy mode), waits for BLOCK_JOB_READY, sends `job-complete` and waits for
BLOCK_JOB_COMPLETED: the export then serves the target. On a timeout the job is
cancelled (force) and the run is reported as such.

Prints one line: "<status> <start> <ready> <end>", times as epoch seconds taken just
before blockdev-mirror was sent, when READY arrived and when COMPLETED arrived;
status is "ok", "timeout" (no READY in time), "timeout_after_READY" or
"error:<QEMU's message with spaces as _>".

usage: qmp-mirror.py SOCKET NODE TARGET_FILE {background,write-blocking} TIMEOUT_S [AIO]
"""
import json
import socket
import sys
import time


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.events = []
        self.read()  # the greeting
        self.cmd("qmp_capabilities")

    def read(self, deadline=None):
        while b"\n" not in self.buf:
            if deadline is not None:
                left = deadline - time.time()
                if left <= 0:
                    return None
                self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            finally:
                self.sock.settimeout(None)
            if not chunk:
                raise ConnectionError("QMP socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self.read()
            if "event" in r:
                self.events.append(r)
            elif "error" in r:
                raise RuntimeError(r["error"].get("desc", str(r["error"])))
            elif "return" in r:
                return r["return"]

    def event(self, names, deadline):
        """the first event named in names, kept ones first; None at the deadline"""
        while True:
            for i, e in enumerate(self.events):
                if e["event"] in names:
                    return self.events.pop(i)
            r = self.read(deadline)
            if r is None:
                return None
            if "event" in r:
                self.events.append(r)


def main():
    sock, node, target, mode, timeout = sys.argv[1:6]
    aio = sys.argv[6] if len(sys.argv) > 6 else "threads"
    q = Qmp(sock)
    q.cmd("blockdev-add", driver="raw", **{"node-name": "tgt"},
          file={"driver": "file", "filename": target, "aio": aio, "cache": {"direct": True}})
    deadline = time.time() + float(timeout)
    start = time.time()
    try:
        q.cmd("blockdev-mirror", **{"job-id": "mig", "device": node, "target": "tgt",
                                    "sync": "full", "copy-mode": mode})
    except RuntimeError as e:
        print("error:" + str(e).replace(" ", "_"), start, start, time.time())
        return 1
    ready = q.event({"BLOCK_JOB_READY", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"}, deadline)
    ready_t = time.time()
    status = "ok"
    if ready is None:
        status = "timeout"
    elif ready["event"] != "BLOCK_JOB_READY":
        status = "error:" + ready["data"].get("error", ready["event"]).replace(" ", "_")
    else:
        q.cmd("job-complete", id="mig")
        done = q.event({"BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"}, deadline)
        if done is None:
            status = "timeout_after_READY"
        elif done["event"] != "BLOCK_JOB_COMPLETED" or "error" in done["data"]:
            status = "error:" + done["data"].get("error", done["event"]).replace(" ", "_")
    end = time.time()
    if status.startswith("timeout"):
        q.cmd("block-job-cancel", device="mig", force=True)
        q.event({"BLOCK_JOB_CANCELLED", "BLOCK_JOB_COMPLETED"}, time.time() + 60)
    print(status, f"{start:.6f}", f"{ready_t:.6f}", f"{end:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
