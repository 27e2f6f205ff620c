#!/usr/bin/env python3
"""Membership detection-time benchmark (see run.sh and BENCHMARKS.md).

Starts N `member` processes (speaker/examples/member.rs), each in its own network
namespace on a shared bridge (192.0.2.0/24, namespaces made here and deleted at exit).
Then, per trial, kills one member (SIGKILL: crash, no leave; or SIGTERM: graceful leave)
and measures, from the instant just before the signal to the instant each other member's
live set (printed with a CLOCK_REALTIME timestamp) drops it. The victim is restarted and
the cluster must be whole again before the next trial. Live sets that lose a member that
was not killed are counted as false positives.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

TAG = f"flbm{os.getpid()}"


def sh(*args, check=True):
    r = subprocess.run(args, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


class Member:
    def __init__(self, binary, ns, name, addr, seeds, key_file, profile):
        self.name = name
        self.events = []  # (ns timestamp, frozenset of names) or (ts, "left")
        self.stats = None  # (ns timestamp, bytes in, bytes out, declared dead), the latest
        self.lock = threading.Lock()
        cmd = ["ip", "netns", "exec", ns, binary, "--name", name, "--bind", addr,
               "--key-file", key_file, "--profile", profile]
        for s in seeds:
            cmd += ["--seed", s]
        self.err = open(os.path.join(os.path.dirname(key_file), f"{name}.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err,
                                     text=True, bufsize=1)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            parts = line.split()
            if len(parts) >= 2 and parts[1] == "live":
                names = frozenset(parts[2].split(",")) if len(parts) > 2 else frozenset()
                with self.lock:
                    self.events.append((int(parts[0]), names))
            elif len(parts) == 5 and parts[1] == "stats":
                with self.lock:
                    self.stats = tuple(int(x) for x in (parts[0], *parts[2:]))

    def current(self):
        with self.lock:
            return self.events[-1][1] if self.events else frozenset()

    def dropped_after(self, name, t0):
        with self.lock:
            for ts, names in self.events:
                if ts >= t0 and name not in names:
                    return ts
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def pct(values, p):
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def summary(ms):
    return {"n": len(ms), "p50": pct(ms, 50), "p95": pct(ms, 95), "p99": pct(ms, 99),
            "max": max(ms) if ms else float("nan"), "min": min(ms) if ms else float("nan")}


def wait(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.005)
    raise RuntimeError(f"timeout waiting for {what}")


def sizes(members):
    return sorted(len(m.current()) for m in members.values())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--profile", default="fast", choices=["fast", "swim-only", "memberlist-lan"])
    ap.add_argument("--netem", default="",
                    help="tc netem arguments applied to every member's eth0 egress, "
                         "e.g. 'delay 5ms 5ms loss 1%%'")
    ap.add_argument("--loss", type=float, default=0,
                    help="drop this fraction of every member's outgoing membership "
                         "datagrams (iptables statistic; for kernels without netem)")
    ap.add_argument("--window", type=float, default=0,
                    help="seconds of steady state before the trials over which bytes/s "
                         "per member is measured")
    ap.add_argument("--modes", default="crash,leave")
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--soak", type=float, default=0,
                    help="seconds of idle steady state, counting false positives")
    a = ap.parse_args()

    n = a.members
    namespaces = []
    members = {}
    tmp = tempfile.mkdtemp(prefix="flb-membench-")
    key_file = os.path.join(tmp, "key")
    with open(key_file, "wb") as f:
        f.write(os.urandom(32))
    addrs = [f"192.0.2.{10 + i}:7946" for i in range(n)]
    names = [f"node-{i}" for i in range(n)]
    everyone = frozenset(names)
    false_positives = 0
    soak_fp = 0
    results = {}
    bytes_per_s = None
    try:
        br = f"{TAG}-br"
        sh("ip", "netns", "add", br)
        namespaces.append(br)
        sh("ip", "-n", br, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", br, "link", "set", "br0", "up")
        for i in range(n):
            ns = f"{TAG}-m{i}"
            sh("ip", "netns", "add", ns)
            namespaces.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name",
               f"p{i}", "netns", br)
            sh("ip", "-n", br, "link", "set", f"p{i}", "master", "br0")
            sh("ip", "-n", br, "link", "set", f"p{i}", "up")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "addr", "add", f"192.0.2.{10 + i}/24", "dev", "eth0")
            if a.netem:
                sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "eth0", "root",
                   "netem", *a.netem.split())
            if a.loss > 0:
                sh("ip", "netns", "exec", ns, "iptables", "-A", "OUTPUT", "-p", "udp",
                   "--dport", "7946", "-m", "statistic", "--mode", "random",
                   "--probability", str(a.loss), "-j", "DROP")

        def start(i):
            members[i] = Member(a.binary, f"{TAG}-m{i}", names[i], addrs[i], addrs,
                                key_file, a.profile)

        for i in range(n):
            start(i)
        try:
            wait(lambda: all(members[i].current() == everyone for i in range(n)), 30 + n,
                 "initial join")
        except RuntimeError:
            print(f"live-set sizes: {sizes(members)}; member logs in {tmp}", file=sys.stderr)
            raise
        if a.window > 0:
            time.sleep(3)  # let join gossip settle
            def snap():
                out = {}
                for i in range(n):
                    with members[i].lock:
                        out[i] = members[i].stats
                return out
            s0 = snap()
            time.sleep(a.window)
            s1 = snap()
            ins, outs = [], []
            for i in range(n):
                if s0[i] and s1[i] and s1[i][0] > s0[i][0]:
                    dt = (s1[i][0] - s0[i][0]) / 1e9
                    ins.append((s1[i][1] - s0[i][1]) / dt)
                    outs.append((s1[i][2] - s0[i][2]) / dt)
            bytes_per_s = {"members_counted": len(ins), "in_mean": sum(ins) / len(ins),
                           "out_mean": sum(outs) / len(outs), "in_max": max(ins),
                           "out_max": max(outs)}
            print(f"bytes/s per member: {bytes_per_s}", file=sys.stderr)

        for mode in a.modes.split(","):
            per_trial_all = []   # kill -> last other member dropped the victim
            per_trial_first = []  # kill -> first other member dropped it
            per_observer = []
            for t in range(a.trials):
                victim = t % n
                wait(lambda: all(members[i].current() == everyone for i in range(n)), 60,
                     f"whole cluster before {mode} trial {t}")
                time.sleep(0.3)  # settle: let any pending refutation finish
                marks = {i: len(members[i].events) for i in range(n)}
                t0 = time.time_ns()
                members[victim].proc.send_signal(
                    signal.SIGKILL if mode == "crash" else signal.SIGTERM)
                others = [i for i in range(n) if i != victim]
                wait(lambda: all(members[i].dropped_after(names[victim], t0) is not None
                                 for i in others), 60, f"{mode} trial {t} detection")
                times = [(members[i].dropped_after(names[victim], t0) - t0) / 1e6
                         for i in others]
                per_observer += times
                per_trial_all.append(max(times))
                per_trial_first.append(min(times))
                members[victim].proc.wait()
                # False positives: any other member missing from an observer's set.
                for i in others:
                    with members[i].lock:
                        for ts, s in members[i].events[marks[i]:]:
                            missing = everyone - s - {names[victim]}
                            if missing:
                                false_positives += 1
                                print(f"false positive: {names[i]} lost {sorted(missing)}",
                                      file=sys.stderr)
                start(victim)
                print(f"{a.profile} {mode} trial {t}: victim {names[victim]} "
                      f"all-dropped {max(times):.1f} ms", file=sys.stderr)
            results[mode] = {"all_observers": summary(per_trial_all),
                             "first_observer": summary(per_trial_first),
                             "per_observer": summary(per_observer)}
        # Steady state check after the trials, then an optional idle soak.
        wait(lambda: all(members[i].current() == everyone for i in range(n)), 60,
             "whole cluster at the end")
        soak_fp = 0
        if a.soak > 0:
            marks = {i: len(members[i].events) for i in range(n)}
            time.sleep(a.soak)
            for i in range(n):
                with members[i].lock:
                    for ts, s in members[i].events[marks[i]:]:
                        if everyone - s:
                            soak_fp += 1
                            print(f"soak false positive: {names[i]} lost "
                                  f"{sorted(everyone - s)}", file=sys.stderr)
    finally:
        for m in members.values():
            m.stop()
        for ns in reversed(namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    out = {"profile": a.profile, "members": n, "trials": a.trials, "netem": a.netem, "loss": a.loss,
           "bytes_per_s": bytes_per_s,
           "false_positives": false_positives, "soak_seconds": a.soak,
           "soak_false_positives": soak_fp, "results": results}
    print(json.dumps(out, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
