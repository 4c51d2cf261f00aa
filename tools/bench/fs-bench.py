#!/usr/bin/env python3
"""fs-bench: the same fio jobs on a datastore directory itself, on vdsfs over it and on
mergerfs over it, side by side in one run, on a tmpfs backing and an ext4 backing.

Jobs (direct=1, io_uring, one 1 GiB file): 1M sequential write and read at iodepth 16,
4k random read and write at iodepth 32, the same at iodepth 1 (one request at a time:
pure per-request latency), and 4k random read and write from 4 jobs at iodepth 8 each
(concurrency; fio's group_reporting sums their IOPS and merges their latencies).
Targets run interleaved (job by job, run by run) so machine noise hits them alike; each
cell is the median of --runs runs. Prints MiB/s, IOPS, p50 and p99 completion latency
for every row and the ratios vdsfs/native and vdsfs/mergerfs.
A target that fails a job (mergerfs 2.33 refuses O_DIRECT writes with EINVAL) is
shown as FAIL with its error, not dropped.
--base PATH adds another vdsfs binary (say, a build of the commit before a change)
as the target "base", on a datastore of its own holding the same file on the same
backing (a datastore belongs to one vdsfs at a time), and the ratio vdsfs/base.

Usage: tools/bench/fs-bench.py [--runtime S] [--runs N] [--size 1g] [--backing tmpfs,ext4]
       [--build DIR | --vdsfs PATH] [--base PATH] [--jobs seqwrite,seqread,...] [--vdsfs-opts O]
  --build (or VDSFS_BUILD): the build directory whose fs/vdsfs is measured, default
  build/ of this tree; --jobs: any of the job names in the table's first column.
Needs root, fio, mergerfs (tools/deps.sh bench installs them).
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

JOBS = {
    "seqwrite": dict(rw="write", bs="1M", iodepth=16),
    "seqread": dict(rw="read", bs="1M", iodepth=16),
    "randread": dict(rw="randread", bs="4k", iodepth=32),
    "randwrite": dict(rw="randwrite", bs="4k", iodepth=32),
    "randread-qd1": dict(rw="randread", bs="4k", iodepth=1),
    "randwrite-qd1": dict(rw="randwrite", bs="4k", iodepth=1),
    "randread-4x8": dict(rw="randread", bs="4k", iodepth=8, numjobs=4),
    "randwrite-4x8": dict(rw="randwrite", bs="4k", iodepth=8, numjobs=4),
}


def sh(cmd, check=True):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=check)


def is_mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def wait_mounted(path):
    for _ in range(200):
        if is_mounted(path):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{path} did not mount")


def unmount(path):
    if is_mounted(path):
        if sh(["fusermount3", "-u", path], check=False).returncode:
            sh(["umount", "-l", path], check=False)


def fio(path, job, runtime, size):
    j = JOBS[job]
    cmd = ["fio", "--name=b", f"--filename={path}", f"--size={size}", "--direct=1",
           "--ioengine=io_uring", f"--rw={j['rw']}", f"--bs={j['bs']}",
           f"--iodepth={j['iodepth']}", "--time_based", f"--runtime={runtime}",
           "--ramp_time=1", "--randrepeat=0", "--norandommap", "--output-format=json",
           f"--numjobs={j.get('numjobs', 1)}", "--group_reporting"]
    p = sh(cmd, check=False)
    if p.returncode:
        err = (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1]
        return None, err
    d = json.loads(p.stdout[p.stdout.index("{"):])["jobs"][0]
    side = d["read"] if j["rw"] in ("read", "randread") else d["write"]
    pct = side["clat_ns"].get("percentile", {})
    return dict(mibs=side["bw"] / 1024.0, iops=side["iops"], p50=pct.get("50.000000", 0) / 1000.0,
                p99=pct.get("99.000000", 0) / 1000.0), None


class Backing:
    def __init__(self, kind, top, size, base=False):
        self.kind = kind
        self.ds = os.path.join(top, f"{kind}-ds")
        os.mkdir(self.ds)
        if kind == "tmpfs":
            gib = int(size.rstrip("gG")) + 1 if size[-1] in "gG" else 2
            sh(["mount", "-t", "tmpfs", "-o", f"size={gib * (2 if base else 1)}g", "tmpfs", self.ds])
        self.file = "bench.img"
        # One fully written file, laid out once through the native path; the base
        # build's datastore is a folder beside it, with a file of its own.
        self.base_ds = os.path.join(self.ds, "base-ds") if base else None
        for d in filter(None, (self.ds, self.base_ds)):
            os.makedirs(d, exist_ok=True)
            sh(["fio", "--name=layout", f"--filename={os.path.join(d, self.file)}",
                f"--size={size}", "--rw=write", "--bs=1M", "--direct=0", "--ioengine=psync"])

    def close(self):
        if self.kind == "tmpfs":
            sh(["umount", "-l", self.ds], check=False)


def mount_vdsfs(vdsfs, ds, mnt, vdsfs_opts):
    os.mkdir(mnt)
    cmd = [vdsfs, f"ds={ds}", mnt]
    if vdsfs_opts:
        cmd += ["-o", vdsfs_opts]
    sh(cmd)
    wait_mounted(mnt)


def start_targets(b, top, vdsfs, vdsfs_opts, base=None):
    mv = os.path.join(top, f"{b.kind}-vdsfs")
    mm = os.path.join(top, f"{b.kind}-mergerfs")
    targets = {"native": b.ds}
    # The base build's datastore sits inside the other's: the bench file is at
    # the top of each, and neither mount sees the other's file by its name.
    mount_vdsfs(vdsfs, b.ds, mv, vdsfs_opts)
    targets["vdsfs"] = mv
    if base:
        mb = os.path.join(top, f"{b.kind}-base")
        mount_vdsfs(base, b.base_ds, mb, vdsfs_opts)
        targets["base"] = mb
    os.mkdir(mm)
    sh(["mergerfs", "-o", "cache.files=off,category.create=mfs,fsname=mergerfs", b.ds, mm])
    wait_mounted(mm)
    targets["mergerfs"] = mm
    return targets


def fmt_cell(r):
    if r is None:
        return "FAIL"
    return f"{r['mibs']:9.1f} {r['iops']:9.0f} {r['p50']:7.0f} {r['p99']:8.0f}"


def ratio(a, b, key):
    if a is None or b is None or not b[key]:
        return "  n/a"
    return f"{a[key] / b[key]:5.2f}x"


def median_result(rs):
    rs = [r for r in rs if r]
    if not rs:
        return None
    return {k: statistics.median(r[k] for r in rs) for k in ("mibs", "iops", "p50", "p99")}


def run_backing(kind, args, top):
    b = Backing(kind, top, args.size, base=bool(args.base))
    targets = {}
    try:
        targets = start_targets(b, top, args.vdsfs, args.vdsfs_opts, args.base)
        results = {}
        for job in args.jobs:
            runs = {t: [] for t in targets}
            errs = {}
            for _ in range(args.runs):
                for t, mnt in targets.items():
                    r, err = fio(os.path.join(mnt, b.file), job, args.runtime, args.size)
                    runs[t].append(r)
                    if err:
                        errs[t] = err
            results[job] = ({t: median_result(v) for t, v in runs.items()}, errs)
        return results
    finally:
        for t, mnt in targets.items():
            if t != "native":
                unmount(mnt)
        b.close()


def report(kind, results, base):
    names = ["native", "vdsfs"] + (["base"] if base else []) + ["mergerfs"]
    ratios = [("vdsfs", "native"), ("vdsfs", "mergerfs")] + ([("vdsfs", "base")] if base else [])
    print(f"\n## {kind} backing (median of runs; MiB/s, IOPS, p50 and p99 completion latency usec)")
    print("| job | " + " | ".join(f"{t} MiB/s IOPS p50 p99" for t in names) + " | " +
          " | ".join(f"{a}/{b}" for a, b in ratios) + " |")
    print("|---|" + "---|" * (len(names) + len(ratios)))
    for job, (res, errs) in results.items():
        key = "mibs" if job.startswith("seq") else "iops"
        print(f"| {job} | " + " | ".join(fmt_cell(res[t]) for t in names) + " | " +
              " | ".join(ratio(res[a], res[b], key) for a, b in ratios) + " |")
        for t, e in errs.items():
            print(f"|  | {t} failed: {e} |" + " |" * (len(names) + len(ratios) - 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtime", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", default="1g")
    ap.add_argument("--backing", default="tmpfs,ext4")
    ap.add_argument("--jobs", default=",".join(JOBS))
    ap.add_argument("--build", default=os.environ.get("VDSFS_BUILD", "build"))
    ap.add_argument("--vdsfs", help="the vdsfs binary (default: BUILD/fs/vdsfs)")
    ap.add_argument("--base", help="another vdsfs binary to compare with, side by side")
    ap.add_argument("--vdsfs-opts", default="")
    ap.add_argument("--dir", default="/var/tmp", help="where the ext4 backing lives")
    args = ap.parse_args()
    args.jobs = args.jobs.split(",")
    unknown = [j for j in args.jobs if j not in JOBS]
    if unknown:
        sys.exit(f"fs-bench: unknown job {','.join(unknown)}; jobs: {','.join(JOBS)}")
    if not args.vdsfs:
        top = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
        args.vdsfs = os.path.join(top, args.build, "fs/vdsfs")
    if args.base and not os.access(args.base, os.X_OK):
        sys.exit(f"fs-bench: no vdsfs at {args.base} (--base)")
    if not os.access(args.vdsfs, os.X_OK):
        sys.exit(f"fs-bench: no vdsfs at {args.vdsfs} (build it, or --build DIR / --vdsfs PATH)")
    # SIGTERM ends the run like Ctrl-C, through the finally blocks that unmount
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if os.geteuid():
        sys.exit("fs-bench: needs root")
    for tool in ("fio", "mergerfs"):
        if not shutil.which(tool):
            sys.exit(f"fs-bench: {tool} missing (tools/deps.sh bench)")
    top = tempfile.mkdtemp(prefix="vdsfs-bench-", dir=args.dir)
    print(f"# fs-bench: runtime {args.runtime}s x {args.runs} runs, file {args.size}, "
          f"kernel {os.uname().release}, {os.cpu_count()} cpus")
    try:
        for kind in args.backing.split(","):
            report(kind, run_backing(kind, args, top), args.base)
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
