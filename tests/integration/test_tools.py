#!/usr/bin/env python3
"""The tools' command lines as users type them: --version, one size syntax in vdsctl,
vds-copy and vds-diff (a bad value is refused with one line naming the option),
vdsctl migrate's room-check options, vdsfs's datastore specs in vds-copy. What vdsctl
sends is read off a stand-in control socket that records each request, so these
tests need no daemon."""
import json
import os
import shutil
import socket
import tempfile
import threading
import unittest

from vdsfs_fixture import CONTROL_DIR, VDSCTL, VDSFS, _rmdir_if_empty, default_socket, main, run

VDS_COPY = os.environ.get("VDS_COPY", "vds-copy")
VDS_DIFF = os.environ.get("VDS_DIFF", "vds-diff")
K, M, G = 1 << 10, 1 << 20, 1 << 30


class FakeDaemon:
    """A control socket that answers every request with ok and keeps the requests;
    at path if given (then removed at cleanup), else in a temporary folder."""

    REPLY = '{"ok":true,"ids":[],"where":[],"migrations":[]}\n'

    def __init__(self, case, path=None, reply=REPLY):
        self.dir = tempfile.mkdtemp(prefix="vdsctl-it-")
        case.addCleanup(shutil.rmtree, self.dir, True)
        self.path = path or os.path.join(self.dir, "ctl.sock")
        self.reply = reply
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(self.path)
        if path:
            case.addCleanup(os.unlink, path)
        self.srv.listen(4)
        self.requests = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()
        case.addCleanup(self.close)

    def serve(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            with conn, conn.makefile("rw") as f:
                for line in f:
                    self.requests.append(json.loads(line))
                    f.write(self.reply)
                    f.flush()

    def close(self):
        self.srv.shutdown(socket.SHUT_RDWR)
        self.srv.close()
        self.thread.join()

    def ctl(self, *args, check=True):
        """Run vdsctl -s against this socket; the requests it sent."""
        del self.requests[:]
        p = run([VDSCTL, "-s", self.path] + list(args), check=check)
        return p, list(self.requests)


def refused(case, cmd, *words):
    """cmd exits 2 with one line on stderr that holds every word."""
    p = run(cmd, check=False)
    case.assertEqual(p.returncode, 2, p.stderr)
    lines = p.stderr.strip().splitlines()
    case.assertEqual(len(lines), 1, p.stderr)
    for w in words:
        case.assertIn(w, lines[0])
    return lines[0]


class Versions(unittest.TestCase):
    def test_every_tool(self):
        version = os.environ["VDS_VERSION"]
        for tool, exe in (("vdsctl", VDSCTL), ("vds-copy", VDS_COPY), ("vds-diff", VDS_DIFF)):
            self.assertEqual(run([exe, "--version"]).stdout, f"{tool} {version}\n")
        self.assertTrue(run([VDSFS, "--version"]).stdout.startswith(f"vdsfs {version} (libfuse "))


class Sizes(unittest.TestCase):
    def test_vdsctl_bwlimit(self):
        d = FakeDaemon(self)
        for text, value in (("1.5M", 3 * M // 2), ("200MiB", 200 * M), ("64kb", 64 * K),
                            ("4096", 4096), ("2G", 2 * G)):
            _, reqs = d.ctl("migrate", "--bwlimit", text, "vm/disk=bulk")
            self.assertEqual(reqs[0]["bwlimit"], value, text)
        del d.requests[:]
        for bad in ("1.5", "12X", "-1M", "0x10", "9223372036854775808"):
            refused(self, [VDSCTL, "-s", d.path, "migrate", "--bwlimit", bad, "vm/disk=bulk"],
                    "--bwlimit", bad)
        self.assertEqual(d.requests, [], "a refused option still sent a request")

    def copy_tree(self):
        top = tempfile.mkdtemp(prefix="vds-copy-it-")
        self.addCleanup(shutil.rmtree, top, True)
        for ds in ("a", "b"):
            os.mkdir(os.path.join(top, ds))
        with open(os.path.join(top, "a", "f"), "wb") as f:
            f.write(os.urandom(300 * K))
        return top

    def test_vds_copy(self):
        top = self.copy_tree()
        ds = [f"A={top}/a", f"B={top}/b"]
        run([VDS_COPY, "-q", "--space-margin", "1MiB", "--chunk-size", "64k",
             "--checkpoint-every", "1.5M", "--bwlimit", "A=1G", "--job-bwlimit", "2GB"]
            + ds + ["A:f=B"])
        with open(f"{top}/a/f", "rb") as a, open(f"{top}/b/f", "rb") as b:
            self.assertEqual(a.read(), b.read())
        for opt, bad, words in (("--space-margin", "1X", ()), ("--checkpoint-every", "0.1K", ()),
                                ("--job-bwlimit", "5 M", ()), ("--bwlimit", "7Q", ()),
                                ("--bwlimit", "A=1.5", ("of A",)),
                                ("--chunk-size", "5K", ("multiple of 4K",)),
                                ("--bwlimit", "Z=1M", ("no datastore named 'Z'",)),
                                ("--parallel", "0", ("1-1024",))):
            refused(self, [VDS_COPY, opt, bad] + ds + ["A:f=B"], opt, bad.split("=")[-1], *words)

    def test_vds_diff_create(self):
        top = tempfile.mkdtemp(prefix="vds-diff-it-")
        self.addCleanup(shutil.rmtree, top, True)
        base, diff = os.path.join(top, "base"), os.path.join(top, "diff")
        with open(base, "wb") as f:
            f.truncate(M)
        run([VDS_DIFF, "create", "--size", "1.5M", "--block-size", "64KiB", base, diff])
        info = json.loads(run([VDS_DIFF, "info", "--json", diff]).stdout)
        self.assertEqual((info["size"], info["block_size"]), (3 * M // 2, 64 * K))
        for opt, bad in (("--size", "1.5"), ("--size", "12X"), ("--block-size", "4G"),
                         ("--size", "8E")):
            refused(self, [VDS_DIFF, "create", opt, bad, base, diff + "2"], opt, bad)
        self.assertFalse(os.path.exists(diff + "2"))


class MigrateRequest(unittest.TestCase):
    """vdsctl migrate's room-check options reach the daemon as JSON keys, and only
    when given, so that the daemon's defaults apply otherwise."""

    def test_space_margin_and_no_space_check(self):
        d = FakeDaemon(self)
        _, reqs = d.ctl("migrate", "--space-margin", "1.5G", "--no-space-check", "vm/a",
                        "vm/b=nfs", "--to", "bulk")
        self.assertEqual(reqs, [{"cmd": "migrate", "space_margin": 3 * G // 2, "space_check": False,
                                 "moves": [{"path": "vm/a", "to": "bulk"},
                                           {"path": "vm/b", "to": "nfs"}]}])
        _, reqs = d.ctl("migrate", "--space-margin", "0", "vm/a=bulk")
        self.assertEqual((reqs[0]["space_margin"], "space_check" in reqs[0]), (0, False))
        _, reqs = d.ctl("migrate", "vm/a=bulk")
        self.assertEqual(sorted(reqs[0]), ["cmd", "moves"])
        del d.requests[:]
        for bad in ("12X", "1.5", "8E"):
            refused(self, [VDSCTL, "-s", d.path, "migrate", "--space-margin", bad, "vm/a=bulk"],
                    "--space-margin", bad)
        self.assertEqual(d.requests, [])


class GlobalFlags(unittest.TestCase):
    """vdsctl's own options, before the command: short and long forms, --opt=value,
    and the usage on stderr with exit status 2 (nothing sent) for a bad one."""

    def usage_error(self, d, *args):
        del d.requests[:]
        p = run([VDSCTL] + list(args), check=False)
        self.assertEqual((p.returncode, p.stdout), (2, ""), p.stderr)
        self.assertTrue(p.stderr.startswith("usage: vdsctl "), p.stderr)
        self.assertEqual(d.requests, [])

    def test_help_and_version(self):
        for args in (["-h"], ["--help"], ["-s", "/nonexistent", "--help"]):
            p = run([VDSCTL] + args)
            self.assertTrue(p.stdout.startswith("usage: vdsctl "), args)
            self.assertEqual(p.stderr, "")
        for args in (["-V"], ["--version"]):
            self.assertEqual(run([VDSCTL] + args).stdout, f"vdsctl {os.environ['VDS_VERSION']}\n")

    def test_socket_long_and_short(self):
        d = FakeDaemon(self)
        for flags in (["-s", d.path], ["--socket", d.path], [f"--socket={d.path}"],
                      [f"-s{d.path}"], ["-s", "/nonexistent", "--socket", d.path]):
            del d.requests[:]
            p = run([VDSCTL] + flags + ["status", "--json"])
            self.assertEqual((p.stdout, d.requests), ("[\n]\n", [{"cmd": "status"}]), flags)

    def test_mount_long_form_finds_the_default_socket(self):
        mnt = tempfile.mkdtemp(prefix="vdsctl-it-mnt-")
        self.addCleanup(os.rmdir, mnt)
        if not os.path.isdir(CONTROL_DIR):
            os.mkdir(CONTROL_DIR, 0o711)
            self.addCleanup(_rmdir_if_empty, CONTROL_DIR)
        d = FakeDaemon(self, path=default_socket(mnt))
        for flags in (["--mount", mnt], [f"--mount={mnt}"], ["-m", mnt]):
            del d.requests[:]
            run([VDSCTL] + flags + ["cancel", "7"])
            self.assertEqual(d.requests, [{"cmd": "cancel", "id": 7}], flags)

    def test_usage_errors(self):
        d = FakeDaemon(self)
        self.usage_error(d)                                     # nothing at all
        self.usage_error(d, "-s", d.path)                       # no command
        self.usage_error(d, "status")                           # neither -m nor -s
        self.usage_error(d, "-s", d.path, "-x", "status")       # unknown option
        self.usage_error(d, "-s", d.path, "--bogus", "status")
        self.usage_error(d, "-s", d.path, "-m")                 # -m without its value
        self.usage_error(d, "-s", d.path, "--mount")

    def test_options_end_at_the_command(self):
        d = FakeDaemon(self)
        # After the command, -m is status's argument, not vdsctl's option.
        refused(self, [VDSCTL, "-s", d.path, "status", "-m", "x"], "bad migration id '-m'")
        # The command's own options keep getopt's message for what is wrong.
        refused(self, [VDSCTL, "-s", d.path, "migrate", "--bogus", "vm/a=bulk"],
                "unrecognized option '--bogus'")
        self.assertEqual(d.requests, [])


class DatastoresNames(unittest.TestCase):
    """datastores --names: the names alone, one a line, as shell completion reads
    them; a bad argument is refused before anything is sent."""

    def test_names(self):
        reply = json.dumps({"ok": True, "datastores": [
            {"name": "fast", "path": "/srv/a b", "fs": "ext4", "size": 1, "free": 1, "held": 0,
             "migrations": 0}, {"name": "bulk", "path": "/srv/c", "fs": "xfs", "size": 2,
                                "free": 1, "held": 1, "migrations": 1}]}) + "\n"
        d = FakeDaemon(self, reply=reply)
        p, reqs = d.ctl("datastores", "--names")
        self.assertEqual((p.stdout, reqs), ("fast\nbulk\n", [{"cmd": "datastores"}]))
        for args, words in ((["--names", "--json"], ("not both",)),
                            (["--name"], ("unknown argument '--name'",)), (["x"], ("'x'",))):
            del d.requests[:]
            refused(self, [VDSCTL, "-s", d.path, "datastores"] + args, "datastores:", *words)
            self.assertEqual(d.requests, [])


class DatastoreSpecs(unittest.TestCase):
    """vds-copy takes datastores as vdsfs does, joined by ':' or one per argument."""

    def test_vds_copy_both_forms(self):
        top = Sizes.copy_tree(self)
        os.mkdir(f"{top}/c")
        run([VDS_COPY, "-q", f"A={top}/a:B={top}/b", "A:f=B"])
        run([VDS_COPY, "-q", f"A={top}/a", f"C={top}/c", "A:f=C"])
        with open(f"{top}/a/f", "rb") as a:
            data = a.read()
        for ds in "bc":
            with open(f"{top}/{ds}/f", "rb") as f:
                self.assertEqual(f.read(), data, ds)
        for spec, words in (([f"A={top}/a:A={top}/b"], ("'A' is given twice",)),
                            ([f"A={top}/a", f"B={top}/b:A={top}/c"], ("'A' is given twice",)),
                            ([f"A={top}/a:B="], ("'B' has an empty path",)),
                            ([f"A={top}/a:b@d={top}/b"], ("'b@d' must be",))):
            refused(self, [VDS_COPY] + spec + ["A:f=B"], *words)


if __name__ == "__main__":
    main()
