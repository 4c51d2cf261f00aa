#!/usr/bin/env python3
"""What a filesystem offers a vdsfs datastore, measured by small probes in a scratch
directory on it (never guessed): O_DIRECT, xattrs (user.* and trusted.*), sparse files
with SEEK_DATA/SEEK_HOLE, hole punching and zeroing, preallocation, flock and OFD
record locks, and rename over an existing file.

    python3 fsprobe.py DIR...        a table, one column per DIR

test_netfs.py runs probe() on each datastore filesystem it mounts and checks the
results against the table in README.md ("Filesystems tested as datastores").
Each probe answers a short string: "yes", "no (<errno name>)", or what it saw.
"""
import ctypes
import errno
import fcntl
import mmap
import os
import shutil
import struct
import sys
import tempfile
import threading

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10
MB = 1 << 20
_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def fallocate(fd, mode, off, length):
    if _libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def no(e):
    return f"no ({errno.errorcode.get(e.errno, e.errno)})"


def probe_o_direct(d):
    path = os.path.join(d, "direct")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
    except OSError as e:
        return no(e)
    try:
        buf = mmap.mmap(-1, 4096)
        buf.write(b"\x5a" * 4096)
        os.pwritev(fd, [buf], 0)
        rd = mmap.mmap(-1, 4096)
        if os.preadv(fd, [rd], 0) != 4096 or rd[:] != b"\x5a" * 4096:
            return "no (reads back wrong)"
        return "yes"
    except OSError as e:
        return no(e)
    finally:
        os.close(fd)


def probe_xattr(d, ns):
    path = os.path.join(d, "xattr-" + ns)
    open(path, "w").close()
    name = ns + ".vdsfs-probe"
    try:
        os.setxattr(path, name, b"v\x00\x01")
        if os.getxattr(path, name) != b"v\x00\x01":
            return "no (reads back wrong)"
        if name not in os.listxattr(path):
            return "set, but not listed"
        return "yes"
    except OSError as e:
        return no(e)


def data_map(fd, size):
    out, pos = [], 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:
                break
            raise
        pos = os.lseek(fd, start, os.SEEK_HOLE)
        out.append((start, pos))
    return out


def probe_sparse(d):
    """A 64 MiB file with 64 KiB written at 32 MiB: allocated only there?"""
    path = os.path.join(d, "sparse")
    with open(path, "wb") as f:
        f.truncate(64 * MB)
        f.seek(32 * MB)
        f.write(b"\x11" * 65536)
        f.flush()
        os.fsync(f.fileno())
    st = os.stat(path)
    if st.st_blocks * 512 < 4 * MB:
        return "yes"
    return "no (st_blocks counts the size)" if st.st_blocks * 512 >= 64 * MB else "no"


def probe_seek_data(d):
    path = os.path.join(d, "sparse")
    fd = os.open(path, os.O_RDONLY)
    try:
        m = data_map(fd, 64 * MB)
    except OSError as e:
        return no(e)
    finally:
        os.close(fd)
    if m == [(32 * MB, 32 * MB + 65536)]:
        return "yes"
    if m == [(0, 64 * MB)]:
        return "no (whole file reported as data)"
    return f"partly ({[(a >> 10, b >> 10) for a, b in m]} KiB)"


def probe_fallocate(d, mode, name):
    """Fill 1 MiB, then apply mode to its middle 512 KiB: zeros there, and for a
    punch fewer blocks allocated?"""
    path = os.path.join(d, name)
    with open(path, "wb") as f:
        f.write(b"\x22" * MB)
        f.flush()
        os.fsync(f.fileno())
    fd = os.open(path, os.O_RDWR)
    try:
        before = os.fstat(fd).st_blocks
        fallocate(fd, mode, 256 * 1024, 512 * 1024)
        os.fsync(fd)
        data = os.pread(fd, MB, 0)
        after = os.fstat(fd).st_blocks
    except OSError as e:
        return no(e)
    finally:
        os.close(fd)
    if data != b"\x22" * (256 * 1024) + bytes(512 * 1024) + b"\x22" * (256 * 1024):
        return "no (range does not read as zeros)"
    if mode & FALLOC_FL_PUNCH_HOLE and after >= before:
        return "zeroes, frees nothing"
    return "yes"


def probe_prealloc(d):
    path = os.path.join(d, "prealloc")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fallocate(fd, 0, 0, 4 * MB)
        st = os.fstat(fd)
        if st.st_size != 4 * MB:
            return "no (size not extended)"
        return "yes" if st.st_blocks * 512 >= 4 * MB else "size only, no blocks"
    except OSError as e:
        return no(e)
    finally:
        os.close(fd)


def probe_lock(d, name, take, conflicts):
    """take(fd) on two open file descriptions of one file: the second must be
    refused with one of the errnos in conflicts."""
    path = os.path.join(d, name)
    open(path, "w").close()
    a, b = os.open(path, os.O_RDWR), os.open(path, os.O_RDWR)
    try:
        take(a)
        try:
            take(b)
            return "no (a conflicting lock was granted)"
        except OSError as e:
            if e.errno not in conflicts:
                return no(e)
        return "yes"
    except OSError as e:
        return no(e)
    finally:
        os.close(a)
        os.close(b)


def probe_flock(d):
    return probe_lock(d, "flock", lambda fd: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB),
                      (errno.EWOULDBLOCK,))


def probe_ofd_lock(d):
    """OFD record locks: what qemu takes on its images."""
    lk = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 100, 0)
    return probe_lock(d, "ofd", lambda fd: fcntl.fcntl(fd, fcntl.F_OFD_SETLK, lk),
                      (errno.EAGAIN, errno.EACCES))


def probe_rename(d, rounds=1000):
    """rename(2) of a new file over an existing name, while another thread opens the
    name: the target must never be missing, and reads see old or new, whole. A race:
    an anomaly seen proves the name can go missing, none seen proves nothing."""
    target = os.path.join(d, "target")
    with open(target, "w") as f:
        f.write("v0")
    stop, seen = threading.Event(), []

    def reader():
        while not stop.is_set():
            try:
                with open(target) as f:
                    v = f.read()
                if not v.startswith("v"):
                    seen.append(f"content {v!r}")
            except OSError as e:
                seen.append(errno.errorcode.get(e.errno, str(e.errno)))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(1, rounds + 1):
            tmp = os.path.join(d, "tmp")
            with open(tmp, "w") as f:
                f.write(f"v{i}")
            os.rename(tmp, target)
    except OSError as e:
        return no(e)
    finally:
        stop.set()
        t.join()
    if seen:
        return "not atomic: a reader saw " + ", ".join(sorted(set(seen)))
    return "yes"


PROBES = [
    ("O_DIRECT", probe_o_direct),
    ("xattr user.*", lambda d: probe_xattr(d, "user")),
    ("xattr trusted.*", lambda d: probe_xattr(d, "trusted")),
    ("sparse files", probe_sparse),
    ("SEEK_DATA/SEEK_HOLE", probe_seek_data),
    ("punch hole", lambda d: probe_fallocate(d, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                            "punch")),
    ("zero range", lambda d: probe_fallocate(d, FALLOC_FL_ZERO_RANGE, "zero")),
    ("fallocate", probe_prealloc),
    ("flock", probe_flock),
    ("OFD locks", probe_ofd_lock),
    ("rename over a file", probe_rename),
]


def probe(directory):
    """{probe name: result} for a filesystem, in a scratch folder removed after."""
    d = tempfile.mkdtemp(prefix=".fsprobe-", dir=directory)
    try:
        return {name: fn(d) for name, fn in PROBES}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def table(results):
    """A Markdown table: a row per probe, a column per filesystem."""
    names = list(results)
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for p, _ in PROBES:
        lines.append(f"| {p} | " + " | ".join(results[n][p] for n in names) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: fsprobe.py DIR...")
    print(table({d: probe(d) for d in sys.argv[1:]}))
