#!/usr/bin/env python3
"""Shell-level file operations through the mount behave as on a local filesystem, and
the union/placement rules hold: one home per file, union directories, no EXDEV."""
import errno
import fcntl
import os
import socket
import stat
import subprocess
import unittest

from vdsfs_fixture import Mount, main, run


class Ops(unittest.TestCase):
    def setUp(self):
        self.m = Mount(self, n=3, opts="create=ff,allow_other").start()
        self.p = self.m.path

    def test_create_read_write(self):
        with open(self.p("f"), "wb") as f:
            f.write(b"hello world")
        with open(self.p("f"), "r+b") as f:
            f.seek(6)
            f.write(b"WORLD")
            f.flush()
            os.fsync(f.fileno())
        self.assertEqual(open(self.p("f"), "rb").read(), b"hello WORLD")
        self.assertEqual(open(self.m.backing(0, "f"), "rb").read(), b"hello WORLD")

    def test_append(self):
        with open(self.p("log"), "ab") as f:
            f.write(b"one\n")
        with open(self.p("log"), "ab") as f:
            f.write(b"two\n")
        self.assertEqual(open(self.p("log"), "rb").read(), b"one\ntwo\n")

    def test_setattr(self):
        open(self.p("f"), "w").close()
        os.chmod(self.p("f"), 0o640)
        os.chown(self.p("f"), 1234, 5678)
        os.truncate(self.p("f"), 12345)
        os.utime(self.p("f"), ns=(1_000_000_000_123, 2_000_000_000_456))
        st = os.stat(self.p("f"))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o640)
        self.assertEqual((st.st_uid, st.st_gid), (1234, 5678))
        self.assertEqual(st.st_atime_ns, 1_000_000_000_123)
        self.assertEqual(st.st_mtime_ns, 2_000_000_000_456)
        self.assertEqual(st.st_size, 12345)
        bst = os.stat(self.m.backing(0, "f"))
        self.assertEqual((bst.st_uid, bst.st_size, stat.S_IMODE(bst.st_mode)), (1234, 12345, 0o640))

    def test_ftruncate_on_open_handle(self):
        with open(self.p("f"), "wb") as f:
            f.write(b"x" * 100)
            f.flush()
            os.ftruncate(f.fileno(), 10)
        self.assertEqual(os.path.getsize(self.p("f")), 10)

    def test_mkdir_rmdir_readdir(self):
        os.makedirs(self.p("a/b/c"))
        open(self.p("a/b/c/f"), "w").close()
        self.assertEqual(sorted(os.listdir(self.p("a/b"))), ["c"])
        with self.assertRaises(OSError) as cm:
            os.rmdir(self.p("a/b/c"))
        self.assertEqual(cm.exception.errno, errno.ENOTEMPTY)
        os.unlink(self.p("a/b/c/f"))
        os.rmdir(self.p("a/b/c"))
        self.assertFalse(os.path.exists(self.p("a/b/c")))
        self.assertEqual(os.listdir(self.p("a/b")), [])

    def test_ls_shows_dots(self):
        os.mkdir(self.p("d"))
        out = run(["ls", "-a", self.p("d")]).stdout.split()
        self.assertEqual(out, [".", ".."])

    def test_union_directory(self):
        # The same directory on every datastore, different files in each copy,
        # plus a name present twice: the first datastore's object wins.
        for i in range(3):
            os.makedirs(self.m.backing(i, "vm"))
            with open(self.m.backing(i, f"vm/disk{i}"), "w") as f:
                f.write(str(i))
            with open(self.m.backing(i, "vm/dup"), "w") as f:
                f.write(str(i))
        names = os.listdir(self.p("vm"))
        self.assertEqual(sorted(names), ["disk0", "disk1", "disk2", "dup"])
        self.assertEqual(open(self.p("vm/dup")).read(), "0")
        self.assertEqual(open(self.p("vm/disk2")).read(), "2")

    def test_rmdir_union_removes_every_copy(self):
        for i in range(3):
            os.makedirs(self.m.backing(i, "u"))
        os.rmdir(self.p("u"))
        self.assertEqual(self.m.where("u"), [])

    def test_rmdir_refuses_when_another_copy_has_files(self):
        os.makedirs(self.m.backing(0, "u"))
        os.makedirs(self.m.backing(2, "u"))
        open(self.m.backing(2, "u/x"), "w").close()
        with self.assertRaises(OSError) as cm:
            os.rmdir(self.p("u"))
        self.assertEqual(cm.exception.errno, errno.ENOTEMPTY)
        self.assertEqual(self.m.where("u"), [0, 2])

    def test_unlink(self):
        open(self.p("f"), "w").close()
        os.unlink(self.p("f"))
        self.assertFalse(os.path.exists(self.p("f")))
        self.assertEqual(self.m.where("f"), [])

    def test_unlink_open_file_keeps_data(self):
        with open(self.p("f"), "w+b") as f:
            f.write(b"still here")
            os.unlink(self.p("f"))
            f.seek(0)
            self.assertEqual(f.read(), b"still here")

    def test_rename_same_directory_and_over_existing(self):
        with open(self.p("a"), "w") as f:
            f.write("A")
        with open(self.p("b"), "w") as f:
            f.write("B")
        os.rename(self.p("a"), self.p("b"))
        self.assertEqual(open(self.p("b")).read(), "A")
        self.assertFalse(os.path.exists(self.p("a")))

    def test_rename_into_directory_that_lives_elsewhere(self):
        # file on ds0, target directory only on ds2: no EXDEV, the path is created.
        with open(self.m.backing(0, "f"), "w") as f:
            f.write("data")
        os.makedirs(self.m.backing(2, "only/here"))
        os.chmod(self.m.backing(2, "only/here"), 0o750)
        os.rename(self.p("f"), self.p("only/here/f"))
        self.assertEqual(open(self.p("only/here/f")).read(), "data")
        self.assertEqual(self.m.where("only/here/f"), [0])
        self.assertEqual(stat.S_IMODE(os.stat(self.m.backing(0, "only/here")).st_mode), 0o750)

    def test_rename_replaces_target_on_other_datastore(self):
        with open(self.m.backing(0, "src"), "w") as f:
            f.write("new")
        with open(self.m.backing(1, "dst"), "w") as f:
            f.write("old")
        os.rename(self.p("src"), self.p("dst"))
        self.assertEqual(open(self.p("dst")).read(), "new")
        self.assertEqual(self.m.where("dst"), [0])

    def test_rename_noreplace_sees_other_datastore(self):
        open(self.m.backing(0, "src"), "w").close()
        open(self.m.backing(1, "dst"), "w").close()
        p = run(["mv", "--no-clobber", "-v", self.p("src"), self.p("dst")], check=False)
        self.assertTrue(os.path.exists(self.p("src")))

    def test_rename_directory_across_copies(self):
        for i in (0, 1):
            os.makedirs(self.m.backing(i, f"d/sub{i}"))
        os.rename(self.p("d"), self.p("e"))
        self.assertEqual(sorted(os.listdir(self.p("e"))), ["sub0", "sub1"])
        self.assertFalse(os.path.exists(self.p("d")))
        self.assertEqual(self.m.where("e"), [0, 1])

    def test_symlink_readlink(self):
        open(self.p("target"), "w").close()
        os.symlink("target", self.p("link"))
        self.assertEqual(os.readlink(self.p("link")), "target")
        self.assertTrue(stat.S_ISLNK(os.lstat(self.p("link")).st_mode))
        self.assertTrue(os.path.exists(self.p("link")))

    def test_hard_link_same_datastore_same_inode(self):
        with open(self.p("f"), "w") as f:
            f.write("x")
        os.makedirs(self.m.backing(2, "elsewhere"))
        os.link(self.p("f"), self.p("elsewhere/g"))
        a, b = os.stat(self.p("f")), os.stat(self.p("elsewhere/g"))
        self.assertEqual(a.st_ino, b.st_ino)
        self.assertEqual(a.st_nlink, 2)
        self.assertEqual(self.m.where("elsewhere/g"), [0])

    def test_mknod_fifo_and_socket(self):
        os.mkfifo(self.p("fifo"))
        self.assertTrue(stat.S_ISFIFO(os.stat(self.p("fifo")).st_mode))
        os.mknod(self.p("sock"), 0o600 | stat.S_IFSOCK)
        self.assertTrue(stat.S_ISSOCK(os.stat(self.p("sock")).st_mode))

    def test_statfs_sums_distinct_filesystems(self):
        # All three datastores are on one filesystem here: counted once.
        a, b = os.statvfs(self.p("")), os.statvfs(self.m.paths[0])
        self.assertAlmostEqual(a.f_blocks * a.f_frsize, b.f_blocks * b.f_frsize,
                               delta=8 * 4096)

    def test_fallocate_punch_and_zero_range(self):
        with open(self.p("img"), "wb") as f:
            f.write(b"\xff" * (1 << 20))
        fd = os.open(self.p("img"), os.O_RDWR)
        try:
            # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE = 3, FALLOC_FL_ZERO_RANGE = 16
            run(["fallocate", "-p", "-o", "65536", "-l", "65536", self.p("img")])
            run(["fallocate", "-z", "-o", "262144", "-l", "4096", self.p("img")])
            data = os.pread(fd, 1 << 20, 0)
        finally:
            os.close(fd)
        self.assertEqual(len(data), 1 << 20)
        self.assertEqual(data[65536:131072], b"\0" * 65536)
        self.assertEqual(data[262144:266240], b"\0" * 4096)
        self.assertEqual(data[:65536], b"\xff" * 65536)
        self.assertEqual(data[131072:262144], b"\xff" * 131072)

    def test_seek_data_hole(self):
        with open(self.p("sparse"), "wb") as f:
            f.truncate(4 << 20)
            f.seek(2 << 20)
            f.write(b"x" * 4096)
        fd = os.open(self.p("sparse"), os.O_RDONLY)
        try:
            self.assertEqual(os.lseek(fd, 0, os.SEEK_DATA), 2 << 20)
            self.assertEqual(os.lseek(fd, 2 << 20, os.SEEK_HOLE), (2 << 20) + 4096)
        finally:
            os.close(fd)

    def test_xattrs_file_and_dir(self):
        open(self.p("f"), "w").close()
        os.setxattr(self.p("f"), "user.k", b"v1")
        self.assertEqual(os.getxattr(self.p("f"), "user.k"), b"v1")
        self.assertIn("user.k", os.listxattr(self.p("f")))
        os.removexattr(self.p("f"), "user.k")
        self.assertNotIn("user.k", os.listxattr(self.p("f")))
        for i in (0, 2):
            os.makedirs(self.m.backing(i, "d"))
        os.setxattr(self.p("d"), "user.tag", b"vm")
        for i in (0, 2):
            self.assertEqual(os.getxattr(self.m.backing(i, "d"), "user.tag"), b"vm")

    def test_flock_and_posix_and_ofd_locks(self):
        open(self.p("img"), "w").close()
        a = os.open(self.p("img"), os.O_RDWR)
        b = os.open(self.p("img"), os.O_RDWR)
        try:
            fcntl.flock(a, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with self.assertRaises(BlockingIOError):
                fcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(a, fcntl.LOCK_UN)
            # POSIX record locks conflict between processes, so test with a child.
            fcntl.lockf(a, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
            child = subprocess.run(["flock", "-n", "-E", "42", self.p("img"), "true"])
            self.assertEqual(child.returncode, 0)  # flock and POSIX locks are separate
            code = ("import fcntl,os,sys\nfd=os.open(sys.argv[1],os.O_RDWR)\n"
                    "try:\n fcntl.lockf(fd,fcntl.LOCK_EX|fcntl.LOCK_NB,10,0)\nexcept OSError:\n sys.exit(7)\n")
            child = subprocess.run(["python3", "-c", code, self.p("img")])
            self.assertEqual(child.returncode, 7)
        finally:
            os.close(a)
            os.close(b)
        # OFD locks (what qemu uses): conflict between two open file descriptions.
        self.assertEqual(run(["python3", "-c", OFD_CHECK, self.p("img")], check=False).returncode, 0)

    def test_hidden_state_folder(self):
        self.assertNotIn(".vdsfs", os.listdir(self.p("")))
        with self.assertRaises(FileNotFoundError):
            os.stat(self.p(".vdsfs"))
        with self.assertRaises(PermissionError):
            open(self.p(".vdsfs"), "w")

    def test_inode_numbers_stable(self):
        open(self.p("f"), "w").close()
        os.mkdir(self.p("d"))
        before = (os.stat(self.p("f")).st_ino, os.stat(self.p("d")).st_ino)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("2")  # forget dentries and inodes: the kernel looks them up again
        after = (os.stat(self.p("f")).st_ino, os.stat(self.p("d")).st_ino)
        self.assertEqual(before, after)
        entry = [e.inode() for e in os.scandir(self.p("")) if e.name == "f"]
        self.assertEqual(entry, [before[0]])

    def test_non_root_creator_owns_file(self):
        os.chmod(self.m.top, 0o755)
        os.chmod(self.p(""), 0o777)
        run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "sh", "-c", f"echo hi > {self.p('mine')} && mkdir {self.p('mydir')}"])
        for rel in ("mine", "mydir"):
            st = os.stat(self.m.backing(0, rel))
            self.assertEqual((st.st_uid, st.st_gid), (65534, 65534), rel)

    def test_permissions_enforced_for_other_users(self):
        with open(self.p("secret"), "w") as f:
            f.write("s")
        os.chmod(self.p("secret"), 0o600)
        os.chmod(self.m.top, 0o755)
        p = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                 "cat", self.p("secret")], check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Permission denied", p.stderr)

    def test_cp_mv_rm_du(self):
        src = os.path.join(self.m.top, "src.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(3 << 20))
        run(["cp", src, self.p("copy.bin")])
        run(["cmp", src, self.p("copy.bin")])
        run(["mv", self.p("copy.bin"), self.p("moved.bin")])
        run(["cmp", src, self.p("moved.bin")])
        du = int(run(["du", "-k", self.p("moved.bin")]).stdout.split()[0])
        self.assertGreaterEqual(du, 3 * 1024)
        run(["rm", "-r", self.p("moved.bin")])
        self.assertEqual(os.listdir(self.p("")), [])


OFD_CHECK = r"""
import fcntl, os, struct, sys
F_OFD_SETLK = 37
a = os.open(sys.argv[1], os.O_RDWR)
b = os.open(sys.argv[1], os.O_RDWR)
lk = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 100, 0)
fcntl.fcntl(a, F_OFD_SETLK, lk)
try:
    fcntl.fcntl(b, F_OFD_SETLK, lk)
except OSError:
    sys.exit(0)
sys.exit(1)
"""


class Placement(unittest.TestCase):
    def test_mfs_picks_most_free(self):
        m = Mount(self, n=3, tmpfs_mb=[16, 64, 32]).start()
        open(m.path("f"), "w").close()
        self.assertEqual(m.where("f"), [1])

    def test_ff_and_named(self):
        m = Mount(self, n=3, tmpfs_mb=[16, 64, 32], opts="create=ds2").start()
        os.makedirs(m.path("vm"))
        open(m.path("vm/disk"), "w").close()
        self.assertEqual(m.where("vm/disk"), [2])

    def test_new_file_in_dir_that_lives_elsewhere(self):
        m = Mount(self, n=2, opts="create=ds1").start()
        os.makedirs(m.backing(0, "vm"))
        os.chmod(m.backing(0, "vm"), 0o711)
        open(m.path("vm/disk"), "w").close()
        self.assertEqual(m.where("vm/disk"), [1])
        self.assertEqual(stat.S_IMODE(os.stat(m.backing(1, "vm")).st_mode), 0o711)

    def test_statfs_sums_datastores(self):
        m = Mount(self, n=2, tmpfs_mb=[16, 32]).start()
        sv = os.statvfs(m.mnt)
        self.assertEqual(sv.f_blocks * sv.f_frsize, 48 << 20)

    def test_full_named_datastore_gives_enospc(self):
        m = Mount(self, n=2, tmpfs_mb=[1, 64], opts="create=ds0").start()
        with self.assertRaises(OSError) as cm:
            with open(m.path("big"), "wb") as f:
                f.write(b"x" * (2 << 20))
        self.assertEqual(cm.exception.errno, errno.ENOSPC)


class NoEscape(unittest.TestCase):
    """A symlink on a datastore standing where another datastore has a directory
    ("vm" -> a directory outside every datastore) must not lead out: paths under a
    datastore resolve beneath it (fs/store/beneath.h), for lookups, creates, renames and
    directory listings alike."""

    def setUp(self):
        self.m = Mount(self, n=2, opts="create=ds1")
        self.outside = os.path.join(self.m.top, "outside")
        os.makedirs(os.path.join(self.outside, "sub"))
        with open(os.path.join(self.outside, "secret"), "w") as f:
            f.write("secret")
        os.makedirs(self.m.backing(0, "vm"))
        with open(self.m.backing(0, "vm/disk"), "w") as f:
            f.write("disk")
        os.symlink(self.outside, self.m.backing(1, "vm"))
        self.m.start()

    def errno_of(self, fn, *args):
        with self.assertRaises(OSError) as cm:
            fn(*args)
        return cm.exception.errno

    def test_lookup_does_not_follow(self):
        p = self.m.path
        self.assertEqual(self.errno_of(os.stat, p("vm/secret")), errno.ENOENT)
        self.assertEqual(self.errno_of(os.stat, p("vm/sub")), errno.ENOENT)
        self.assertEqual(sorted(os.listdir(p("vm"))), ["disk"])
        with open(p("vm/disk")) as f:
            self.assertEqual(f.read(), "disk")

    def test_create_mkdir_rename_stay_inside(self):
        p = self.m.path
        for fn, args in ((open, (p("vm/planted"), "w")), (os.mkdir, (p("vm/dir"),)),
                         (os.rename, (p("vm/disk"), p("vm/sub/disk")))):
            with self.assertRaises(OSError):
                fn(*args)
        self.assertEqual(sorted(os.listdir(self.outside)), ["secret", "sub"])
        self.assertEqual(os.listdir(os.path.join(self.outside, "sub")), [])
        self.assertEqual(self.m.where("vm/disk"), [0])


if __name__ == "__main__":
    main()
