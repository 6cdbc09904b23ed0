"""Where the CPU time goes, from py-spy's raw (collapsed) samples of a throughput run
(`bench/device_throughput.sh profile` writes them):

    python bench/pyspy_summary.py profile.txt --out bench/results/throughput_profile_cuda --note "..."

Samples are split by process kind (a GPU process: a stack through `_gpu_worker`; a decoder: `_decode_worker`;
the rest: the parent), then per kind: the share of samples inside each function (inclusive) and the functions
the samples end in (self). py-spy counts only threads that are not idle, so a share is of busy thread time."""
from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<fn>[^;]+?) \((?P<file>[^();]+):\d+\)$")
SKIP = ("threading.py", "multiprocessing/", "concurrent/futures", "<frozen", "contextlib.py")


def parse(text: str) -> dict[str, Counter]:
    """{kind: Counter of stacks (tuples of 'fn (file)') -> samples}."""
    out: dict[str, Counter] = {}
    for line in text.splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = []
        for part in stack.split(";"):
            m = FRAME.match(part.strip())
            if m:
                path = m["file"]
                short = "/".join(path.split("/")[-2:]) if "site-packages" in path or path.startswith("/") \
                    else path
                frames.append(f"{m['fn']} ({short})")
        names = " ".join(frames)
        kind = "GPU process" if "_gpu_worker" in names else "decoder" if "_decode_worker" in names else "parent"
        out.setdefault(kind, Counter())[tuple(frames)] += int(n)
    return out


def summarise(stacks: Counter, top: int) -> tuple[int, list, list]:
    total = sum(stacks.values())
    incl, self_ = Counter(), Counter()
    for frames, n in stacks.items():
        for f in dict.fromkeys(f for f in frames if not any(s in f for s in SKIP)):
            incl[f] += n
        if frames:
            self_[frames[-1]] += n
    return total, incl.most_common(top), self_.most_common(top)


def render(kinds: dict[str, Counter], top: int, note: str | None) -> str:
    lines = ["# Where a throughput run's CPU time goes (py-spy)", "",
             "`bench/device_throughput.sh profile`: py-spy sampled every process of `bench/bench_throughput.py` "
             "(not idle threads only), then `bench/pyspy_summary.py`. A share is of the busy thread samples of "
             "that kind of process; inclusive shares of nested functions overlap." + (f" {note}" if note else ""),
             ""]
    for kind, stacks in sorted(kinds.items(), key=lambda kv: -sum(kv[1].values())):
        total, incl, self_ = summarise(stacks, top)
        lines += [f"## {kind}: {total} samples", "", "| inclusive % | function |", "|---:|---|"]
        lines += [f"| {100 * n / total:.1f} | `{f}` |" for f, n in incl]
        lines += ["", "| self % | function |", "|---:|---|"]
        lines += [f"| {100 * n / total:.1f} | `{f}` |" for f, n in self_]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("raw", help="py-spy record -f raw output")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--note", default=None)
    p.add_argument("--out", default=None, help="write <out>.md too")
    args = p.parse_args(argv)
    try:
        text = Path(args.raw).read_text(errors="replace")
    except OSError as exc:
        print(f"error: cannot read {args.raw}: {exc}", file=sys.stderr)
        return 2
    md = render(parse(text), args.top, args.note)
    if args.out:
        Path(args.out).with_suffix(".md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
