"""The hostile-client part of the results markdown: a goal table, then each scenario's numbers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmarks.tables import fmt, table


def _verdict(passed: bool) -> str:
    return "pass" if passed else "FAIL"


def _statuses(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "none"


_TITLES = {
    "slow_clients": "slow connections",
    "worst_image": "worst accepted image",
    "sigterm": "SIGTERM under load",
}


def _ran(hostile: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """The scenario's results if it finished (one that did not has an `error`)."""
    result = hostile.get(name)
    return result if result and "error" not in result else None


def goal_rows(hostile: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(scenario, measured, goal, pass) for each scenario that ran."""
    rows = [
        (_TITLES[name], f"did not finish: {result['error']}", result["goal"], "FAIL")
        for name, result in hostile.items()
        if name in _TITLES and "error" in result
    ]
    if slow := _ran(hostile, "slow_clients"):
        measured = (
            f"{fmt(slow['attacked']['ok_per_s'])} vs {fmt(slow['baseline']['ok_per_s'])} req/s "
            f"(x{fmt(slow['throughput_ratio'], 2)}), {slow['non_200']} non-200"
        )
        name = f"{slow['connections']:,} slow connections, hey x{slow['legit_clients']}"
        rows.append((name, measured, slow["goal"], _verdict(slow["passed"])))
    if worst := _ran(hostile, "worst_image"):
        measured = (
            f"p99 {fmt(worst['baseline']['p99_ms'], 1)} -> {fmt(worst['attacked']['p99_ms'], 1)} "
            f"ms (+{fmt(worst['p99_rise_ms'], 1)}), RSS +{fmt(worst['rss_rise_mb'])} MB"
        )
        name = f"worst accepted image ({worst['worst']}) x{worst['clients']}"
        rows.append((name, measured, worst["goal"], _verdict(worst["passed"])))
    if term := _ran(hostile, "sigterm"):
        measured = (
            f"{term['runs_passed']}/{term['runs']} runs clean; 200s client/log "
            f"{term['client_200']}/{term['log_200']}, {term['resets']} resets, "
            f"{term['dropped']} dropped"
        )
        name = f"SIGTERM under {term['clients']}-client load"
        rows.append((name, measured, term["goal"], _verdict(term["passed"])))
    return rows


def hostile_lines(hostile: Mapping[str, Any]) -> list[str]:
    """The `## Hostile clients` section."""
    lines = ["## Hostile clients", ""]
    if reason := hostile.get("skipped"):
        return [*lines, f"Skipped: {reason}.", ""]
    lines += table(["scenario", "measured", "goal", "pass"], goal_rows(hostile))
    if slow := _ran(hostile, "slow_clients"):
        lines += _slow_lines(slow)
    if worst := _ran(hostile, "worst_image"):
        lines += _worst_lines(worst)
    if term := _ran(hostile, "sigterm"):
        lines += _sigterm_lines(term)
    return lines


def _slow_lines(slow: Mapping[str, Any]) -> list[str]:
    base, hit, limit = slow["baseline"], slow["attacked"], slow["fd_limit"]
    headers = ["run", "200/s", "statuses", "lost", "p50 ms", "p99 ms", "CPU cores: service",
               "bench (attackers)", "hey"]  # fmt: skip
    rows = [
        (name, row["ok_per_s"], _statuses(row["statuses"]), row["lost"], fmt(row["p50_ms"], 1),
         fmt(row["p99_ms"], 1), fmt(row.get("service_cores"), 2), fmt(row.get("bench_cores"), 2),
         fmt(row.get("hey_cores"), 2))
        for name, row in (("baseline", base), (f"{slow['connections']:,} slow clients", hit))
    ]  # fmt: skip
    return [
        "### Slow clients",
        "",
        f"{slow['connections']:,} connections (half send the head, half the body after a full "
        f"head, one byte every {fmt(slow['interval_s'], 1)} s; reconnecting when closed) against "
        f"hey with {slow['legit_clients']} clients and single 28x28 PNGs for "
        f"{fmt(base['seconds'])} s, first without attackers. Attackers open at the start "
        f"{slow['attackers_open_at_start']}, during the run min/mean "
        f"{slow['attackers_open_min']}/{fmt(slow['attackers_open_mean'])}; their connections "
        f"ended: {_statuses(slow['attackers']['ends'])}. File descriptors: soft limit "
        f"{limit['soft_before']} -> {limit['soft_after']} (hard {limit['hard']}, wanted "
        f"{limit['wanted']}). Healthy afterwards: {slow['healthy_after']}.",
        "",
        *table(headers, rows),
    ]


def _worst_lines(worst: Mapping[str, Any]) -> list[str]:
    base, hit = worst["baseline"], worst["attacked"]
    accepted = "accepted" if worst["worst_accepted"] else "refused like every other"
    headers = ["image", "bytes", "pixels", "status", "error", "seconds", "RSS after MB",
               "peak RSS MB"]  # fmt: skip
    probes = [
        (p["name"], p["bytes"], p["pixels"], p["status"], p["error_code"] or "-",
         fmt(p["seconds"], 2), p["rss_after_mb"], p["peak_rss_after_mb"])
        for p in worst["probes"]
    ]  # fmt: skip
    return [
        "### Worst accepted image",
        "",
        "Each hostile PNG sent alone (with the default TAGGER_MAX_PIXELS):",
        "",
        *table(headers, probes),
        f"The costliest one ({worst['worst']}, {accepted}) sent by {worst['clients']} clients in "
        f"a loop (answers: {_statuses(worst['attack_statuses'])}) while hey sends single 28x28 "
        f"PNGs with {worst['light_clients']} client(s): light p99 "
        f"{fmt(base['p99_ms'], 1)} -> {fmt(hit['p99_ms'], 1)} ms, 200/s "
        f"{fmt(base['ok_per_s'])} -> {fmt(hit['ok_per_s'])}, light statuses under attack "
        f"{_statuses(hit['statuses'])}; RSS {fmt(worst['rss_before_mb'])} MB before any hostile "
        f"image, peak (VmHWM) {fmt(worst['peak_rss_mb'])} MB.",
        "",
    ]


def _sigterm_lines(term: Mapping[str, Any]) -> list[str]:
    rows = [
        (index, _statuses(run["client"]), _statuses(run["log"]), run["resets"],
         f"{run['dropped']} ({sum(run.get('dropped_on_new_connection', {}).values())})",
         fmt(run["exit_code"]), fmt(run["drain_s"], 1), _verdict(run["passed"]))
        for index, run in enumerate(term["per_run"], start=1)
    ]  # fmt: skip
    headers = ["run", "client outcomes", "access log", "resets", "dropped (on a new connection)",
               "exit", "drain s", "pass"]  # fmt: skip
    return [
        "### SIGTERM under load",
        "",
        f"{term['clients']} keep-alive clients (raw sockets, one request at a time each), "
        f"SIGTERM after {fmt(term['after_s'], 1)} s; each request's outcome against the "
        "service's access log. `refused` (listener closed) and `idle_closed` (the server closed "
        "an idle keep-alive connection before it was reused) never reached the server.",
        "",
        *table(headers, rows),
    ]
