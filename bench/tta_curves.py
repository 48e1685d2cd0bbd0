"""Time-to-accuracy curves: test accuracy against wall-clock seconds, from the
metrics.jsonl of `neurite train` runs (or the log of bench/pytorch/train.py), as one SVG
(no dependencies beyond Python).

    python3 bench/tta_curves.py -o docs/img/tta-resnet20.svg --title "resnet20" \
        --target 94.0 runs/a/metrics.jsonl:"neurite fast, seed 0" torch.log:"PyTorch fast"

Each argument is PATH:LABEL. A metrics.jsonl gives one point per evaluated epoch: x is the
sum of the epochs' `seconds` (training and evaluation) up to it, y its `test_accuracy`. A
PyTorch log gives its lines' `elapsed` seconds and `test acc`. The time before the first
epoch (start-up, data loading) is not in either; `/usr/bin/time` has the whole command.
"""

import argparse
import json
import re

W, H = 760, 440
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 60
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]


def read_points(path):
    """[(seconds, accuracy %)] of one run."""
    points, total = [], 0.0
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                d = json.loads(line)
                total += d["seconds"]
                if d.get("test_accuracy") is not None:
                    points.append((total, 100.0 * d["test_accuracy"]))
                continue
            m = re.search(r"test acc ([0-9.]+).*elapsed ([0-9.]+) s", line)
            if m:
                points.append((float(m.group(2)), 100.0 * float(m.group(1))))
    return points


def svg(runs, title, target, y_min):
    xs = [x for _, pts in runs for x, _ in pts]
    ys = [y for _, pts in runs for _, y in pts]
    x_max = max(xs) * 1.05
    lo = y_min if y_min is not None else min(ys) - 0.5
    hi = max(max(ys), target or 0) + 0.3
    px = lambda x: LEFT + (W - LEFT - RIGHT) * x / x_max  # noqa: E731
    py = lambda y: TOP + (H - TOP - BOTTOM) * (1 - (y - lo) / (hi - lo))  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>']
    for i in range(6):  # grid and ticks
        x = x_max * i / 5
        out.append(f'<line x1="{px(x):.1f}" y1="{TOP}" x2="{px(x):.1f}" y2="{H - BOTTOM}" '
                   f'stroke="#ddd"/><text x="{px(x):.1f}" y="{H - BOTTOM + 16}" '
                   f'text-anchor="middle">{x:.0f}</text>')
        y = lo + (hi - lo) * i / 5
        out.append(f'<line x1="{LEFT}" y1="{py(y):.1f}" x2="{W - RIGHT}" y2="{py(y):.1f}" '
                   f'stroke="#ddd"/><text x="{LEFT - 6}" y="{py(y) + 4:.1f}" '
                   f'text-anchor="end">{y:.1f}</text>')
    out.append(f'<text x="{W / 2}" y="{H - 18}" text-anchor="middle">wall-clock seconds '
               f'(training and evaluation)</text>')
    out.append(f'<text x="16" y="{H / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {H / 2})">test accuracy (%)</text>')
    if target is not None:
        out.append(f'<line x1="{LEFT}" y1="{py(target):.1f}" x2="{W - RIGHT}" '
                   f'y2="{py(target):.1f}" stroke="black" stroke-dasharray="5,4"/>'
                   f'<text x="{W - RIGHT - 4}" y="{py(target) - 4:.1f}" text-anchor="end">'
                   f'target {target}%</text>')
    for i, (label, pts) in enumerate(runs):
        c = COLORS[i % len(COLORS)]
        pts = [(x, max(y, lo)) for x, y in pts]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
        out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{c}"/>' for x, y in pts]
        ly = H - BOTTOM - 12 - 16 * (len(runs) - 1 - i)
        out.append(f'<line x1="{W - 250}" y1="{ly - 4}" x2="{W - 228}" y2="{ly - 4}" '
                   f'stroke="{c}" stroke-width="2"/><text x="{W - 222}" y="{ly}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="PATH:LABEL")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--title", default="time to accuracy")
    p.add_argument("--target", type=float, default=None, help="a dashed line at this accuracy")
    p.add_argument("--y-min", type=float, default=None)
    a = p.parse_args()
    runs = []
    for spec in a.runs:
        path, _, label = spec.partition(":")
        pts = read_points(path)
        if not pts:
            p.error(f"{path}: no evaluated epoch found")
        runs.append((label or path, pts))
    with open(a.out, "w") as f:
        f.write(svg(runs, a.title, a.target, a.y_min))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
