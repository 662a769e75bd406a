"""Charts of a benchmark run, drawn from its CSVs (issue 10: pictures beside docs/benchmarks.md).

    .deps/venv/bin/python benches/throughput/charts.py DIR [--out OUTDIR]

DIR holds the CSVs that bench.py writes (summary.csv and scale.csv in a results directory, or
latest-summary.csv and latest-scale.csv in docs/benchmarks/). Writes SVG files to OUTDIR (default
DIR):

- throughput.svg: produce msg/s per durability row, chronik against Apache Kafka, 1 and 3 nodes;
- latency.svg: produce p50 and p99 (ms, log scale) for the same targets;
- consume.svg: consume MB/s;
- scale.svg: the scale curve (msg/s against partition count, 1 node), when the CSV has it.

Every chart is drawn from the medians in the CSV, never from constants; a chart whose CSV is
missing is skipped with a line saying so. bench.py calls draw() at the end of a run; matplotlib
comes from run.sh's install step.
"""
import argparse
import csv
import sys
from pathlib import Path

TARGET_LABELS = {
    "chronik-1": "chronik, 1 node",
    "kafka-1": "Kafka, 1 node",
    "chronik-3": "chronik, 3 nodes RF 3",
    "kafka-3": "Kafka, 3 nodes RF 3",
}
TARGET_COLORS = {"chronik-1": "#1f77b4", "kafka-1": "#ff7f0e", "chronik-3": "#2ca02c", "kafka-3": "#d62728"}


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def find(dirpath, *names):
    for n in names:
        p = Path(dirpath) / n
        if p.exists():
            return p
    return None


def medians(summary_rows):
    """{(row, target): {field: float}} from the `median` rows of a summary CSV."""
    out = {}
    for r in summary_rows:
        if r.get("kind") != "median":
            continue
        vals = {}
        for k, v in r.items():
            try:
                vals[k] = float(v)
            except (TypeError, ValueError):
                pass
        out[(r["row"], r["target"])] = vals
    return out


def grouped_bars(plt, med, field, title, ylabel, path, log=False, fields=None):
    rows = sorted({row for row, _ in med}, key=lambda r: (r != "durable", r))
    targets = [t for t in TARGET_LABELS if any((row, t) in med for row in rows)]
    fields = fields or [(field, "")]
    fig, ax = plt.subplots(figsize=(8, 5.2))
    n = len(targets) * len(fields)
    width = 0.8 / max(n, 1)
    for i, t in enumerate(targets):
        for j, (f, suffix) in enumerate(fields):
            xs = [k + (i * len(fields) + j - (n - 1) / 2) * width for k in range(len(rows))]
            ys = [med.get((row, t), {}).get(f, 0.0) for row in rows]
            bars = ax.bar(xs, ys, width, label=TARGET_LABELS[t] + suffix, color=TARGET_COLORS[t],
                          alpha=1.0 if j == 0 else 0.55, hatch=None if j == 0 else "//")
            for b, y in zip(bars, ys):
                if y > 0:
                    ax.annotate(f"{y:,.0f}", (b.get_x() + b.get_width() / 2, y), ha="center", va="bottom",
                                fontsize=7, rotation=90 if n > 4 else 0)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([("durable (fsync before ack)" if r == "durable" else "page cache") for r in rows])
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log:
        ax.set_yscale("log")
    ax.margins(y=0.12)
    ax.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.1))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)
    return path


def scale_chart(plt, scale_rows, path):
    series = {}
    for r in scale_rows:
        if "error" in r and r["error"]:
            continue
        try:
            p, v = int(r["partitions"]), float(r["msg_s"])
        except (KeyError, ValueError):
            continue
        series.setdefault(r["target"], {}).setdefault(p, []).append(v)
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for t, pts in sorted(series.items()):
        xs = sorted(pts)
        ys = [sorted(pts[x])[len(pts[x]) // 2] for x in xs]
        ax.plot(xs, ys, marker="o", label=TARGET_LABELS.get(t, t), color=TARGET_COLORS.get(t))
    ax.set_xscale("log")
    ax.set_xticks(sorted({x for pts in series.values() for x in pts}))
    ax.get_xaxis().set_major_formatter(plt.matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("partitions")
    ax.set_ylabel("produce msg/s (1 KB records)")
    ax.set_title("Scale curve")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)
    return path


def draw(dirpath, outdir=None):
    """Draws every chart the CSVs in `dirpath` allow; returns the paths written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.matplotlib = matplotlib
    matplotlib.rcParams["svg.hashsalt"] = "chronik"  # stable ids: a redraw of the same CSV is the same file
    outdir = Path(outdir or dirpath)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    summary = find(dirpath, "summary.csv", "latest-summary.csv")
    if summary:
        med = medians(read_csv(summary))
        written.append(grouped_bars(plt, med, "msg_s", "Produce throughput (acks=all, 1 KB records)",
                                    "msg/s (median)", outdir / "throughput.svg"))
        written.append(grouped_bars(plt, med, None, "Produce latency (lower is better)", "ms (median of runs)",
                                    outdir / "latency.svg", log=True,
                                    fields=[("p50_ms", " p50"), ("p99_ms", " p99")]))
        if any("consume_mb_s" in v for v in med.values()):
            written.append(grouped_bars(plt, med, "consume_mb_s", "Consume throughput", "MB/s (median)",
                                        outdir / "consume.svg"))
    else:
        print(f"[charts] no summary CSV in {dirpath}: throughput/latency charts skipped", flush=True)
    scale = find(dirpath, "scale.csv", "latest-scale.csv")
    if scale:
        p = scale_chart(plt, read_csv(scale), outdir / "scale.svg")
        if p:
            written.append(p)
    else:
        print(f"[charts] no scale CSV in {dirpath}: scale chart skipped", flush=True)
    for p in written:
        print(f"[charts] wrote {p}", flush=True)
    return written


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if not draw(args.dir, args.out):
        sys.exit("no chart drawn: no CSV found")


if __name__ == "__main__":
    main()
