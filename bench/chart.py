#!/usr/bin/python3
# chart.py: draws the `blockbox bench --json` results as an SVG bar chart (p50 bars on
# a log scale, p90 and p99 marks), by hand, with the standard library only.
"""Usage: chart.py [RESULTS.json|-] [OUT.svg|-]   (default: stdin to stdout)"""

import json
import math
import sys
from xml.sax.saxutils import escape

# Drawing order, and which rows are blockbox and which are baselines.
ORDER = [
    ("live_instance", "blockbox"),
    ("in_process", "baseline"),
    ("pipe_rtt", "baseline"),
    ("pipe_rtt_cross_cpu", "baseline"),
    ("throughput_per_core", "blockbox"),
    ("throughput_single", "blockbox"),
    ("fresh_worker", "blockbox"),
    ("fresh_worker_paced", "blockbox"),
    ("fork_wait", "baseline"),
    ("fork_wait_mirror", "baseline"),
    ("image_1080p", "blockbox"),
    ("in_process_image", "baseline"),
    ("frame_1080p_raw", "blockbox"),
    ("frames_per_second", "blockbox"),
    ("frame_1080p_json_data", "blockbox"),
    ("frame_4k_raw", "blockbox"),
    ("memcpy_frame", "baseline"),
    ("numpy_invert_in_process", "baseline"),
    ("python_fresh", "baseline"),
]
COLOURS = {"blockbox": "#2b6cb0", "baseline": "#a0aec0"}

LEFT, RIGHT, TOP, ROW, BAR = 190, 150, 58, 30, 16
PLOT_W = 560


def _fmt_us(us):
    for scale, unit in ((1e6, "s"), (1e3, "ms"), (1.0, "µs")):
        if us >= scale or unit == "µs":
            value = us / scale
            return ("%.0f %s" if value >= 100 else "%.3g %s") % (value, unit)
    return "%g µs" % us


def _rows(results):
    scenarios = results.get("scenarios")
    if not isinstance(scenarios, dict):
        raise ValueError("no 'scenarios' object in the results")
    names = [n for n, _ in ORDER if n in scenarios]
    names += sorted(n for n in scenarios if n not in dict(ORDER))
    kinds = dict(ORDER)
    rows = []
    for name in names:
        s = scenarios[name]
        p50, p90, p99 = (float(s[k]) for k in ("p50_us", "p90_us", "p99_us"))
        rows.append((name, kinds.get(name, "blockbox"), p50, p90, p99))
    if not rows:
        raise ValueError("no scenarios to draw")
    return rows


def render(results):
    rows = _rows(results)
    lo = math.floor(math.log10(max(min(r[2] for r in rows), 1e-3)))
    hi = math.ceil(math.log10(max(r[4] for r in rows)))
    if hi <= lo:
        hi = lo + 1

    def x(us):
        us = max(us, 10 ** lo)
        return LEFT + (math.log10(us) - lo) / (hi - lo) * PLOT_W

    height = TOP + ROW * len(rows) + 70
    width = LEFT + PLOT_W + RIGHT
    machine = results.get("machine", {})
    subtitle = "%s, %s cores, %s mode; log scale; bar = p50, | = p90, ◆ = p99" % (
        machine.get("cpu", "unknown CPU"), machine.get("cores", "?"), machine.get("mode", "?"))
    out = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
        'font-family="sans-serif" font-size="12">' % (width, height, width, height),
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="%d" y="22" font-size="16" font-weight="bold">blockbox bench: latency per call</text>'
        % LEFT,
        '<text x="%d" y="40" fill="#4a5568">%s</text>' % (LEFT, escape(subtitle)),
    ]
    axis_y = TOP + ROW * len(rows) + 6
    for exp in range(lo, hi + 1):
        gx = x(10 ** exp)
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e2e8f0"/>'
                   % (gx, TOP - 6, gx, axis_y))
        out.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#4a5568">%s</text>'
                   % (gx, axis_y + 16, escape(_fmt_us(10 ** exp))))
    for i, (name, kind, p50, p90, p99) in enumerate(rows):
        y = TOP + i * ROW
        mid = y + BAR / 2
        out.append('<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>'
                   % (LEFT - 8, mid, escape(name)))
        out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s p50 %s</title></rect>'
                   % (LEFT, y, max(x(p50) - LEFT, 1.0), BAR, COLOURS[kind], escape(name),
                      escape(_fmt_us(p50))))
        out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#1a202c"/>'
                   % (x(p50), mid, x(p99), mid))
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#1a202c" stroke-width="2">'
                   '<title>p90 %s</title></line>' % (x(p90), y - 1, x(p90), y + BAR + 1,
                                                       escape(_fmt_us(p90))))
        px = x(p99)
        out.append('<path d="M%.1f %.1f l4 4 l-4 4 l-4 -4 z" fill="#c53030"><title>p99 %s</title></path>'
                   % (px, mid - 4, escape(_fmt_us(p99))))
        out.append('<text x="%.1f" y="%.1f" dominant-baseline="middle" fill="#2d3748">%s</text>'
                   % (max(px, x(p50)) + 9, mid, escape(_fmt_us(p50))))
    legend_y = axis_y + 40
    for j, (kind, label) in enumerate((("blockbox", "blockbox (isolated)"),
                                       ("baseline", "baseline (same run, same machine)"))):
        lx = LEFT + j * 220
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>'
                   % (lx, legend_y - 10, COLOURS[kind]))
        out.append('<text x="%d" y="%d">%s</text>' % (lx + 18, legend_y, escape(label)))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) > 3 or (len(argv) > 1 and argv[1] in ("-h", "--help")):
        sys.stderr.write(__doc__ + "\n")
        return 2
    src = argv[1] if len(argv) > 1 else "-"
    dst = argv[2] if len(argv) > 2 else "-"
    if src == "-":
        results = json.load(sys.stdin)
    else:
        with open(src, encoding="utf-8") as f:
            results = json.load(f)
    svg = render(results)
    if dst == "-":
        sys.stdout.write(svg)
    else:
        with open(dst, "w", encoding="utf-8") as f:
            f.write(svg)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
