#!/usr/bin/env python3
"""Faults during a migration (issue 6): the differencing file's datastore fills up,
the destination fills up during the copy, the destination disappears, a corrupt
journal or differencing file is found at mount, and a control client misbehaves.
In every case nothing written before is lost and the source keeps serving."""
import errno
import json
import os
import socket
import unittest

from vdsfs_fixture import Ctl, Mount, main, run, state_files, wait_dead
from test_migrate import MB, make_file, qemu_io


class SourceFull(unittest.TestCase):
    """The differencing file grows on the source; when that fills, writers get
    ENOSPC, what was written stays, reads go on, and the migration still ends."""

    def test_enospc_on_source_keeps_data(self):
        m = Mount(self, n=2, tmpfs_mb=[40, 200])
        make_file(m.backing(0, "vm/disk"), 24)
        m.start(env={"VDSFS_TEST_HOLD": "copied"})
        c = Ctl(m)
        img = m.path("vm/disk")
        mid, = c.migrate(img, "--to", "ds1")
        c.wait_held(mid, "copied")
        qemu_io(img, "write -P 0x71 0 1M", "flush")
        fd = os.open(img, os.O_RDWR)
        err = None
        try:
            for i in range(1, 24):  # rewrite the rest: the diff needs ~23 MiB, 16 are free
                os.pwrite(fd, bytes([0x72]) * MB, i * MB)
                os.fsync(fd)
        except OSError as e:
            err = e.errno
        finally:
            os.close(fd)
        self.assertEqual(err, errno.ENOSPC)
        qemu_io(img, "read -P 0x72 1M 1M")     # what was written and flushed is there
        c.release()
        # The full source cannot take the journal's next record either: the
        # migration fails and rolls back (MIGRATION.md), the file stays on ds0.
        st = c.wait_phase(mid, "done", "failed", "cancelled")
        self.assertEqual(st["phase"], "failed", st)
        self.assertIn("journal", st["error"])
        qemu_io(img, "read -P 0x71 0 1M", "read -P 0x72 1M 1M")
        self.assertEqual(m.where("vm/disk"), [0])
        self.assertEqual(state_files(m), [])


class DestinationFull(unittest.TestCase):
    def test_destination_fills_during_copy(self):
        # ds1 passes the pre-check only because the file is sparse-looking to df
        # afterwards: fill ds1 behind vdsfs's back once the copy has started.
        m = Mount(self, n=2, tmpfs_mb=[200, 120])
        make_file(m.backing(0, "vm/disk"), 48)
        m.start()
        c = Ctl(m)
        img = m.path("vm/disk")
        mid, = c.migrate("--bwlimit", "8M", img, "--to", "ds1")
        c.wait(lambda: c.one(mid)["bytes_copied"] > 0, "copy progress")
        fd = os.open(m.backing(1, "filler"), os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\1" * MB)
        except OSError as e:
            self.assertEqual(e.errno, errno.ENOSPC)
        finally:
            os.close(fd)
        st = c.wait_phase(mid, "failed", "done", "cancelled")
        self.assertEqual(st["phase"], "failed", st)
        self.assertIn("No space", st.get("error", ""))
        os.unlink(m.backing(1, "filler"))
        self.assertEqual(m.where("vm/disk"), [0])
        self.assertEqual(os.stat(img).st_size, 48 * MB)
        run(["cmp", img, m.backing(0, "vm/disk")])
        self.assertEqual(state_files(m), [])


class DestinationGone(unittest.TestCase):
    def test_destination_unmounted_mid_migration(self):
        m = Mount(self, n=2, tmpfs_mb=[200, 200])
        make_file(m.backing(0, "vm/disk"), 32)
        m.start(env={"VDSFS_TEST_HOLD": "copied"})
        c = Ctl(m)
        img = m.path("vm/disk")
        mid, = c.migrate(img, "--to", "ds1")
        c.wait_held(mid, "copied")
        qemu_io(img, "write -P 0x81 2M 1M", "flush")
        run(["umount", "-l", m.paths[1]])   # the destination vanishes
        c.release()
        st = c.wait_phase(mid, "failed", "done", "cancelled")
        self.assertEqual(st["phase"], "failed", st)
        self.assertIn("no longer mounted", st["error"])
        qemu_io(img, "read -P 0x81 2M 1M")
        self.assertEqual(m.where("vm/disk"), [0])
        self.assertEqual(os.stat(img).st_size, 32 * MB)


class CorruptAtMount(unittest.TestCase):
    def crash_then_damage(self, damage):
        m = Mount(self, n=2)
        make_file(m.backing(0, "vm/disk"), 8)
        make_file(m.backing(0, "vm/other"), 1)
        m.start(env={"VDSFS_TEST_HOLD": "copied", "VDSFS_TEST_CRASH": "mid-converge"})
        c = Ctl(m)
        mid, = c.migrate(m.path("vm/disk"), "--to", "ds1")
        c.wait_held(mid, "copied")
        qemu_io(m.path("vm/disk"), "write -P 0x91 0 4M", "flush")
        c.release()
        wait_dead(m)
        run(["fusermount3", "-uz", m.mnt], check=False)
        damage(os.path.join(m.paths[0], ".vdsfs", f"mig-{mid}"))
        m.start()
        return m, c, mid

    def test_corrupt_differencing_file_is_refused_others_serve(self):
        def damage(base):
            # both header slots and the map (the data area starts at 1 MiB): one
            # damaged header alone is a torn write the format survives by design
            with open(base + ".diff", "r+b") as f:
                f.write(b"garbage!" * (MB // 8))
        m, c, mid = self.crash_then_damage(damage)
        st = c.one(mid)
        self.assertEqual(st["phase"], "failed", st)
        self.assertIn("refused", st["error"])
        # the rest of the mount serves normally, and the damage is explained
        self.assertEqual(os.path.getsize(m.path("vm/other")), MB)
        p = run([os.environ.get("VDS_DIFF", "vds-diff"), "check", os.path.join(m.paths[0], ".vdsfs", f"mig-{mid}.diff")],
                check=False)
        self.assertNotEqual(p.returncode, 0)
        # the files are kept for a human: nothing was guessed
        self.assertTrue(os.path.exists(os.path.join(m.paths[0], ".vdsfs", f"mig-{mid}.json")))

    def test_corrupt_journal_is_left_alone(self):
        def damage(base):
            with open(base + ".json", "w") as f:
                f.write("{not json")
        m, c, mid = self.crash_then_damage(damage)
        self.assertEqual(os.path.getsize(m.path("vm/other")), MB)
        self.assertTrue(os.path.exists(os.path.join(m.paths[0], ".vdsfs", f"mig-{mid}.json")))


class BadControlClients(unittest.TestCase):
    def setUp(self):
        self.m = Mount(self, n=2)
        make_file(self.m.backing(0, "vm/disk"), 1)
        self.m.start()
        self.c = Ctl(self.m)

    def send(self, data, read=True):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.m.sock)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon refused to read on (oversized) and said why
        out = s.makefile("rb").read() if read else b""
        s.close()
        return out

    def test_garbage_truncated_wrong_types(self):
        for req in (b"\x00\xff garbage\n", b'{"cmd": "migr\n', b"[1,2,3]\n", b'{"cmd": 5}\n',
                    b'{"cmd":"migrate","moves":"x"}\n', b'{"cmd":"migrate","moves":[{"path":7}]}\n',
                    b'{"cmd":"where","paths":[null]}\n', b'{"cmd":"cancel","id":"1"}\n',
                    b'{"cmd":"migrate","moves":[{"path":"../../etc/passwd","to":"ds1"}]}\n',
                    b'{"cmd":"migrate","moves":[{"path":"/etc/passwd","to":"ds1"}]}\n',
                    b'{"cmd":"migrate","moves":[{"path":"vm/disk\\nx","to":"ds1"}]}\n',
                    b'{"cmd":"where","paths":["../../../etc"]}\n'):
            out = self.send(req)
            reply = json.loads(out.splitlines()[0])
            if "where" in reply:  # where answers per path
                self.assertTrue(reply["where"][0].get("error"), req)
            else:
                self.assertFalse(reply["ok"], req)
                self.assertTrue(reply["error"], req)
        self.assertEqual(self.c.status(), [])
        self.assertEqual(self.m.where("vm/disk"), [0])

    def test_symlink_out_of_a_datastore_is_refused(self):
        os.symlink("/etc", self.m.backing(0, "escape"))
        for req in (b'{"cmd":"migrate","moves":[{"path":"escape/hostname","to":"ds1"}]}\n',
                    b'{"cmd":"where","paths":["escape/hostname"]}\n'):
            reply = json.loads(self.send(req).splitlines()[0])
            err = reply.get("error") or reply["where"][0].get("error")
            self.assertTrue(err, reply)
        self.assertEqual(self.c.status(), [])
        self.assertTrue(os.path.exists("/etc/hostname"))

    def test_oversized_request_and_disconnects(self):
        out = self.send(b"x" * (2 << 20))
        self.assertIn(b"too large", out)
        self.send(b'{"cmd":"status"', read=False)      # gone mid-request
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.m.sock)
        s.close()                                       # gone before a word
        self.assertEqual(self.c.status(), [])           # still serving

    def test_non_root_peer_refused(self):
        os.chmod(self.m.top, 0o755)
        os.chmod(self.m.sock, 0o777)
        # the daemon answers a refused peer at once and hangs up, so the send may
        # meet a closed socket: the answer is still there to read
        code = ("import socket,sys\ns=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1])\n"
                "try:\n s.sendall(b'{\"cmd\":\"status\"}\\n')\nexcept OSError:\n pass\n"
                "print(s.makefile().readline())")
        p = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "python3", "-c",
                 code, self.m.sock])
        self.assertIn("permission denied", p.stdout)


if __name__ == "__main__":
    main()
