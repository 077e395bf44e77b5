"""Results: derived comparisons, the machine, and the .json / .md / .png files."""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks import bulk, fairness, protocols, runtimes, stats, workers
from benchmarks.report_hostile import hostile_lines
from benchmarks.tables import fmt as _fmt
from benchmarks.tables import table as _table

Row = Mapping[str, Any]


def machine() -> dict[str, object]:
    """Cores, CPU model (from /proc/cpuinfo) and memory of the machine the numbers came from."""
    model = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_gib = math.nan
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 2**20, 1)
    return {
        "host": platform.node(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": model,
        "memory_gib": memory_gib,
        "python": platform.python_version(),
    }


def raw_by_batch(raw: Mapping[str, Sequence[Row]]) -> dict[int, float]:
    return {int(p["batch_size"]): float(p["images_per_s"]) for p in raw.get("model", [])}


def service_vs_raw(service: Sequence[Row], raw: Mapping[str, Sequence[Row]]) -> list[dict]:
    """Each service level against the bare model at the service's mean batch size."""
    points = raw_by_batch(raw)
    rows = []
    for row in service:
        batch = float(row.get("mean_batch_size", math.nan))
        raw_rate = stats.interpolate(points, batch) if not math.isnan(batch) else math.nan
        rows.append(
            {
                "clients": row["clients"],
                "images_per_request": row["images_per_request"],
                "mean_batch_size": batch,
                "service_images_per_s": row["images_per_s"],
                "raw_images_per_s_at_batch": raw_rate,
                "service_over_raw": stats.ratio(float(row["images_per_s"]), raw_rate),
            }
        )
    return rows


def find(rows: Sequence[Row], clients: int, images: int = 1) -> Row | None:
    for row in rows:
        if row["clients"] == clients and row["images_per_request"] == images:
            return row
    return None


def batched_vs_unbatched(
    batched: Sequence[Row], unbatched: Sequence[Row], clients: int = 64
) -> dict[str, float]:
    """Images/s and p99 with dynamic batching against TAGGER_MAX_BATCH_SIZE=1, same clients."""
    on, off = find(batched, clients), find(unbatched, clients)
    if on is None or off is None:
        return {}
    return {
        "clients": clients,
        "batched_images_per_s": on["images_per_s"],
        "unbatched_images_per_s": off["images_per_s"],
        "speedup": stats.ratio(on["images_per_s"], off["images_per_s"]),
        "batched_p99_ms": on["p99_ms"],
        "unbatched_p99_ms": off["p99_ms"],
    }


def sustainable_rate(rows: Sequence[Row], hey: Sequence[Row] = ()) -> float:
    """The best single-image requests/s without errors, from the sweep (and hey's, if run)."""
    rates = [
        float(r["requests_per_s"])
        for r in [*rows, *({**h, "images_per_request": 1} for h in hey)]
        if r.get("images_per_request") == 1 and not r.get("errors") and "requests_per_s" in r
    ]
    return max(rates, default=math.nan)


def markdown(results: Mapping[str, Any]) -> str:
    """The human summary of one run."""
    m = results["machine"]
    lines = [
        f"# cnn-tagger benchmark ({results['plan']}) - {results['started_at']}",
        "",
        f"Machine: {m['cores']} cores ({m['usable_cores']} usable), {m['cpu_model']}, "
        f"{_fmt(m['memory_gib'], 1)} GiB. Model: {results['model']['name']} "
        f"v{results['model']['version']}. Load generators run on the same machine: "
        + "; ".join(_generators(results))
        + ".",
        "",
    ]
    if "raw" in results:
        lines += service_lines(results)
    lines += protocols.lines(results.get("protocols", []))
    lines += fairness.lines(results.get("fairness", {}))
    lines += runtimes.lines(results.get("runtimes", {}), with_raw="raw" not in results)
    lines += workers.lines(results.get("workers", {}))
    lines += bulk.lines(results.get("client", {}))
    if hostile := results.get("hostile"):
        lines += hostile_lines(hostile)
    return "\n".join(lines)


def _generators(results: Mapping[str, Any]) -> list[str]:
    parts = []
    if "raw" in results:
        overload = results.get("overload", {}).get("generator", "httpx")
        parts.append(f"httpx (sweeps, soak); overload: {overload}")
    if "protocols" in results:
        parts.append("protocols: hey")
    if "runtimes" in results:
        parts.append("runtimes: hey")
    if "workers" in results:
        parts.append("workers: hey")
    if "fairness" in results:
        parts.append("two models: hey")
    if "client" in results:
        parts.append("bulk tagging: hey and python -m client")
    if "hostile" in results:
        parts.append("hostile clients: hey (legitimate load), asyncio raw sockets and httpx")
    return parts


def service_lines(results: Mapping[str, Any]) -> list[str]:
    """Raw model, service sweeps, overload and soak."""
    lines = ["## Raw model (in process) and preprocessing", ""]
    if rows := results["raw"].get("runtimes"):
        served = runtimes.NAMES.get(results["raw"]["served_runtime"], "?")
        lines += [
            f"Both runtimes, interleaved; the service (and service vs raw) uses {served}.",
            "",
        ]
        lines += runtimes.raw_table(rows)
    else:  # results from before the runtime comparison
        lines += _table(
            ["batch", "images/s", "ms/batch"],
            [(p["batch_size"], p["images_per_s"], _fmt(p["ms_per_batch"], 2))
             for p in results["raw"]["model"]],
        )  # fmt: skip
    lines += _table(
        ["input", "bytes", "ms/image", "images/s (one core)"],
        [(p["image"], p["bytes"], _fmt(p["ms_per_image"], 3), p["images_per_s"])
         for p in results["raw"]["preprocess"]],
    )  # fmt: skip
    lines += ["## Service vs raw at the same batch size", ""]
    lines += _table(
        ["clients", "images/req", "mean batch", "service images/s", "raw images/s", "service/raw"],
        [(r["clients"], r["images_per_request"], _fmt(r["mean_batch_size"], 1),
          r["service_images_per_s"], r["raw_images_per_s_at_batch"],
          _fmt(r["service_over_raw"], 2)) for r in results["service_vs_raw"]],
    )  # fmt: skip
    lines += ["## Latency per concurrency", ""]
    rows = [("batched", r) for r in results["service"]]
    rows += [("max_batch_size=1", r) for r in results["unbatched"]]
    lines += _table(
        ["service", "clients", "images/req", "images/s", "p50 ms", "p95 ms", "p99 ms", "errors"],
        [(name, r["clients"], r["images_per_request"], r["images_per_s"], _fmt(r["p50_ms"], 1),
          _fmt(r["p95_ms"], 1), _fmt(r["p99_ms"], 1), r["errors"]) for name, r in rows],
    )  # fmt: skip
    if comparison := results.get("batched_vs_unbatched"):
        lines += [
            f"Batched vs unbatched at {comparison['clients']} clients: "
            f"{_fmt(comparison['batched_images_per_s'])} vs "
            f"{_fmt(comparison['unbatched_images_per_s'])} images/s "
            f"(x{_fmt(comparison['speedup'], 2)}), p99 {_fmt(comparison['batched_p99_ms'], 1)} vs "
            f"{_fmt(comparison['unbatched_p99_ms'], 1)} ms.",
            "",
        ]
    if hey := results.get("hey"):
        lines += ["## hey (Go client, JSON body, single image)", ""]
        lines += _table(
            ["clients", "requests/s", "p50 ms", "p99 ms", "errors"],
            [(r["clients"], r.get("requests_per_s"), _fmt(r.get("p50_ms"), 1),
              _fmt(r.get("p99_ms"), 1), _fmt(r.get("errors"))) for r in hey],
        )  # fmt: skip
    if overload := results.get("overload"):
        lines += overload_lines(overload, results["plan_factor"])
    if soak := results.get("soak"):
        lines += [
            "## Soak",
            "",
            f"{soak['clients']} clients for {_fmt(soak['seconds'])} s: {soak['requests']} "
            f"requests, {soak['errors']} errors, {soak['lost']} lost, RSS "
            f"{_fmt(soak['rss_start_mib'], 1)} -> {_fmt(soak['rss_end_mib'], 1)} MiB, p99 "
            f"{_fmt(soak['p99_ms'], 1)} ms.",
            "",
        ]
    return lines


def overload_lines(o: Mapping[str, Any], factor: float) -> list[str]:
    """The overload paragraph: which generator, rates asked/offered, statuses, latencies."""
    generator = o.get("generator", "httpx")
    if generator == "hey":
        how = (f"hey, {o['clients']} rate-limited workers x {_fmt(o['per_client_qps'], 2)}/s; "
               f"sustainable rate from {o['sustainable_source']}")  # fmt: skip
    else:
        how = f"httpx open loop. Note: {o.get('generator_note', 'httpx generator')}"
    if "connect_p99_ms" in o:
        client = (f"connection setup p99/max {_fmt(o['connect_p99_ms'], 1)}/"
                  f"{_fmt(o.get('connect_max_ms'), 1)} ms (once per worker), with it rejected "
                  f"p99 {_fmt(o.get('rejected_total_p99_ms'), 1)} ms; latencies from "
                  f"{_fmt(o.get('settle_s'), 1)} s on, with the start's burst accepted/rejected "
                  f"p99 {_fmt(o.get('accepted_all_p99_ms'), 1)}/"
                  f"{_fmt(o.get('rejected_all_p99_ms'), 1)} ms")  # fmt: skip
    else:
        client = f"client-side wait for a connection p99 {_fmt(o.get('client_wait_p99_ms'), 1)} ms"
    counts = o["statuses"]
    other = sum(n for code, n in counts.items() if code not in ("200", "429", "503"))
    accepted = f"{_fmt(o.get('accepted_p50_ms'), 1)}/{_fmt(o.get('accepted_p99_ms'), 1)}"
    rejected = f"{_fmt(o.get('rejected_p50_ms'), 1)}/{_fmt(o.get('rejected_p99_ms'), 1)}"
    row = (counts.get("200", 0), counts.get("503", 0), counts.get("429", 0), other,
           _fmt(o.get("lost")), accepted, rejected)  # fmt: skip
    headers = ["200", "503", "429", "other", "lost", "accepted p50/p99 ms", "rejected p50/p99 ms"]
    return [
        f"## Overload ({generator})",
        "",
        f"Generator: {how}. Asked {_fmt(o['target_per_s'])} requests/s (x{factor} the "
        f"sustainable {_fmt(o['sustainable_per_s'])}), offered {_fmt(o.get('offered_per_s'))}, "
        f"TAGGER_MAX_QUEUE={o['max_queue']}: {o['requests']} requests, statuses {counts}.",
        "",
        *_table(headers, [row]),
        f"rejected p50/p99 {_fmt(o.get('rejected_p50_ms'), 1)}/{_fmt(o['rejected_p99_ms'], 1)} "
        f"ms on the wire (p99 < 50 ms: {o['rejected_p99_under_50ms']}), {client}; answered "
        f"{_fmt(o.get('answered', o['requests']))} of {_fmt(o.get('sent', o['requests']))} sent "
        f"(service's count: {_fmt(o.get('server_answered'))}), every request answered: "
        f"{o['every_request_answered']}, healthy afterwards: {o['healthy_after']}.",
        "",
    ]


def plot(results: Mapping[str, Any], path: Path) -> None:
    """Throughput and latency against concurrency (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    series = [("batched", results["service"], 1), ("batched, 8 images/req", results["service"], 8),
              ("max_batch_size=1", results["unbatched"], 1)]  # fmt: skip
    ticks: set[int] = set()
    for index, (label, rows, images) in enumerate(series):
        picked = [r for r in rows if r["images_per_request"] == images]
        if not picked:
            continue
        colour = f"C{index}"
        clients = [r["clients"] for r in picked]
        ticks.update(clients)
        left.plot(clients, [r["images_per_s"] for r in picked], "o-", color=colour, label=label)
        right.plot(clients, [r["p50_ms"] for r in picked], "o-", color=colour, label=f"{label} p50")
        p99 = [r["p99_ms"] for r in picked]
        right.plot(clients, p99, "x--", color=colour, label=f"{label} p99")
    best_raw = max(raw_by_batch(results["raw"]).values(), default=None)
    if best_raw:
        left.axhline(best_raw, color="grey", ls=":", label="raw model, best batch size")
    for axis, title, unit in ((left, "Throughput", "images/s"), (right, "Latency", "ms")):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xticks(sorted(ticks), [str(t) for t in sorted(ticks)])
        axis.set_xlabel("concurrent clients")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(f"cnn-tagger {results['plan']} - {results['machine']['cpu_model']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def json_safe(value: Any) -> Any:
    """NaN/inf become null (strict JSON), tuples become lists, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write(results: dict[str, Any], out: Path, stem: str) -> list[Path]:
    """`<stem>.json`, `<stem>.md` and `<stem>.png` under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.json", out / f"{stem}.md"]
    paths[0].write_text(json.dumps(json_safe(results), indent=2, default=str) + "\n")
    paths[1].write_text(markdown(results) + "\n")
    if "service" in results:  # the plot is of the sweeps; a hostile-only run has none
        paths.append(out / f"{stem}.png")
        plot(results, paths[2])
    return paths
