#!/usr/bin/env python3
"""tests/boot/serial.py: boot a guest under qemu-system-x86_64 (TCG, direct
kernel boot, disk on virtio-blk), watch its serial console, and optionally
log in and run commands.

usage: serial.py --disk D --kernel K --initrd I --append CMDLINE
                 [--login USER:PASSWORD --run CMD ...] [--timeout S]
                 [--log FILE]
       serial.py --script RUN.SH --kernel K --initrd I --append CMDLINE ...
With --script, the guest is started by that script (a package's run.sh,
given -snapshot, VMFERRY_KERNEL/INITRD/APPEND, VMFERRY_MEMORY=768 and
VMFERRY_ACCEL=tcg)
instead of the command line below.

Exit 0 when "login:" appeared (and, with --login, the commands ran: their
output between markers is printed), 3 when the guest gave up (no root
device, emergency shell, panic), 4 on timeout.  qemu is always killed by
its PID; the time limit bounds everything.
"""
import argparse, os, re, select, signal, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--disk")
ap.add_argument("--script")
ap.add_argument("--format", default="raw")
ap.add_argument("--kernel", required=True)
ap.add_argument("--initrd", required=True)
ap.add_argument("--append", required=True)
ap.add_argument("--login")
ap.add_argument("--run", action="append", default=[])
ap.add_argument("--timeout", type=float, default=240)
ap.add_argument("--log")
a = ap.parse_args()

FAIL = [rb"Gave up waiting for root", rb"\(initramfs\) ", rb"Kernel panic",
        rb"emergency mode", rb"Cannot open access to console"]

cmd = ["qemu-system-x86_64", "-accel", "tcg", "-m", "768", "-smp", "1",
       "-nodefaults", "-display", "none", "-no-reboot",
       "-kernel", a.kernel, "-initrd", a.initrd, "-append", a.append,
       "-drive", "file=%s,if=virtio,format=%s,snapshot=on" % (a.disk, a.format),
       "-serial", "stdio"]
env = None
if a.script:
    cmd = [a.script, "-snapshot"]
    env = dict(os.environ, VMFERRY_KERNEL=a.kernel, VMFERRY_INITRD=a.initrd,
               VMFERRY_APPEND=a.append, VMFERRY_MEMORY="768",
               VMFERRY_ACCEL="tcg")
elif not a.disk:
    ap.error("--disk or --script is needed")
p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, env=env)
buf = b""
log = open(a.log, "wb") if a.log else None
deadline = time.time() + a.timeout


def read_until(patterns, fail=FAIL):
    """Read until one of patterns (regex bytes) matches in new output."""
    global buf
    start = len(buf)
    while time.time() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 1.0)
        if r:
            d = os.read(p.stdout.fileno(), 65536)
            if not d:
                return "eof"
            buf += d
            if log:
                log.write(d)
                log.flush()
        tail = buf[max(0, start - 64):]
        for pat in patterns:
            if re.search(pat, tail):
                return pat
        for f in fail:
            if re.search(f, tail):
                return "fail"
    return "timeout"


def send(s):
    p.stdin.write(s.encode() + b"\n")
    p.stdin.flush()


rc = 0
try:
    r = read_until([rb"login: "])
    if r == "fail":
        rc = 3
    elif r in ("timeout", "eof"):
        rc = 4
    elif a.login:
        user, pw = a.login.split(":", 1)
        send(user)
        read_until([rb"assword: "])
        send(pw)
        if read_until([rb"# $", rb"# \x1b", rb"\$ $"]) not in ("timeout", "eof", "fail"):
            for i, c in enumerate(a.run):
                # quotes split the markers in the echoed command line, so
                # only the output matches (the console also wraps lines)
                send("echo @@B'%d'@@; %s; echo @@E'%d'@@" % (i, c, i))
                read_until([("@@E%d@@\r?\n" % i).encode()])
                m = re.search(("@@B%d@@\r?\n(.*?)@@E%d@@" % (i, i)).encode(),
                              buf, re.S)
                out = m.group(1).decode(errors="replace") if m else "?"
                print("$ %s\n%s" % (c, out.replace("\r", "")), end="")
        else:
            rc = 4
finally:
    p.send_signal(signal.SIGKILL)
    p.wait()
    if log:
        log.close()
sys.exit(rc)
