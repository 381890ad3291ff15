"""Keep the README's results section in step with a real run of the main study.

``make readme`` (``python -m raidstudy.report.readme results/sparks-2020``) rewrites the block
between ``<!-- results:start -->`` and ``<!-- results:end -->`` from that run's
``results.json``, copies its headline figure to ``docs/figures/`` and a copy of the
``results.json`` to ``docs/sparks-2020-results.json``; a test checks that the README block
is what this module makes of that copy, so the README never quotes a number that no run
produced.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Mapping

from raidstudy.io import atomic_write_text, dumps_json
from raidstudy.paths import repo_root

__all__ = ["results_block", "update_readme", "START", "END"]

START = "<!-- results:start -->"
END = "<!-- results:end -->"
FIGURE = "docs/figures/sparks-2020-fit.png"
PATH_FIGURE = "docs/figures/sparks-2020-path.png"
CURVE_FIGURE = "docs/figures/sparks-2020-specification-curve.png"
BREAKS_FIGURE = "docs/figures/sparks-2020-break-scan.png"
ROBUSTNESS_COPY = "docs/sparks-2020-robustness-results.json"
EVENTS_GROUPS_COPY = "docs/sparks-2020-events-groups-results.json"
FAMILIES_FIGURE = "docs/figures/sparks-2020-family-effects.png"
#: The events-and-groups notebook's sentences, in reading order.
EVENTS_GROUPS_ORDER = ("p2p_reading", "group_turnover", "group_panel_path", "staggered")
#: The robustness notebook's sentences, in reading order.
ROBUSTNESS_ORDER = ("break_scan", "break_multiple", "specification_curve_relative", "specification_curve_level")
RESULTS_COPY = "docs/sparks-2020-results.json"
#: The order in which a reader meets the findings (results.json stores them sorted by key).
SENTENCE_ORDER = ("relative", "path", "decay", "recovery", "cumulative", "level", "slope", "placebo", "model",
                  "caution")


def results_block(res: Mapping[str, Any], robustness: Mapping[str, Any] | None = None,
                  events_groups: Mapping[str, Any] | None = None) -> str:
    """The README's results section for the study's ``results.json`` (and the robustness and
    events-and-groups notebooks')."""
    p = res["parameters"]
    ev = res["event"]
    data = res["data"]
    model = res["model"]
    seasonal = "day-of-week terms" if p["dow"] else "no seasonal terms"
    if p["fourier"]:
        seasonal += f" and {p['fourier']} annual Fourier pairs"
    lines = [
        f"![Effect of the SPARKS raid on Scene releases, week by week, with 95% intervals]({PATH_FIGURE})",
        "",
        f"*{ev['name']}, {ev['date']}.* Outcome: {data['outcome']}; window {data['window_start']} to "
        f"{data['window_end']} ({data['n_periods']} days, {data['n_missing']} missing); model: "
        f"{model['family']} regression with {seasonal} and, after the event, one effect per "
        f"{(res.get('dynamic') or {}).get('event_study', {}).get('bin_width', 1)}-day bin (the segmented "
        f"level-and-slope model beside it); "
        f"{model.get('cov_description', model.get('cov_type'))}; transition periods left out of the fit: "
        f"{ev.get('transition_periods', p['transition_periods'])}.",
        "",
    ]
    sentences = res.get("sentences", {})
    order = [k for k in SENTENCE_ORDER if k in sentences] + sorted(set(sentences) - set(SENTENCE_ORDER))
    for key in order:
        lines.append(f"- {sentences[key]}")
    sens = [r for r in (res.get("robustness") or {}).get("sensitivity", []) if r.get("level_pct") is not None]
    if sens:
        lo = min(sens, key=lambda r: r["level_pct"])
        hi = max(sens, key=lambda r: r["level_pct"])
        lines.append(
            f"- Across the {len(sens)} count-model variants of the sensitivity table the level change runs from "
            f"{lo['level_pct']:+.1f}% ({lo['variant']}) to {hi['level_pct']:+.1f}% ({hi['variant']})."
        )
    lines += counts_block(res.get("counts") or {})
    if robustness:
        rs = robustness.get("sentences", {})
        lines += ["", "**Robustness** (`notebooks/04-robustness.ipynb`, run by `make run` into "
                      "`results/sparks-2020-robustness/`):", ""]
        lines += [f"- {rs[k]}" for k in ROBUSTNESS_ORDER if k in rs]
        lines += ["", f"![Specification curve of the relative effect over the post window]({CURVE_FIGURE})",
                  "", f"![Break scan: the Wald statistic for a break at each date]({BREAKS_FIGURE})"]
    if events_groups:
        es = events_groups.get("sentences", {})
        lines += ["", "**Sections, P2P, groups and several raids** (`notebooks/03-events-and-groups.ipynb`, run by "
                      "`make run` into `results/sparks-2020-events-groups/`):", "",
                  f"![Effect of the SPARKS raid by section family, with 95% intervals]({FAMILIES_FIGURE})", ""]
        lines += [f"- {es[k]}" for k in EVENTS_GROUPS_ORDER if k in es]
    copies = [RESULTS_COPY] + ([ROBUSTNESS_COPY] if robustness else []) + ([EVENTS_GROUPS_COPY] if events_groups else [])
    lines += [
        "",
        f"![Observed Scene releases, the segmented-regression fit and its counterfactual]({FIGURE})",
        "",
        "Numbers from `make run` (results.json in " + ", ".join(f"`{c}`" for c in copies) + ", data checksum "
        f"`{res['provenance']['data_checksum'][:12]}`); `make readme` refreshes this section.",
    ]
    return "\n".join(lines)


def counts_block(counts: Mapping[str, Any]) -> list[str]:
    """The counts behind the headline (daily, weekly, published) as README lines."""
    from raidstudy.report.tables import fmt_int

    out: list[str] = []
    daily, weekly, rep = counts.get("daily") or [], counts.get("weekly") or [], counts.get("replication") or []
    if daily:
        out += ["", "**The counts behind the headline.** Releases a day, the week before and after the raid "
                    "(UTC days; `-` = not collected):", "",
                "| " + " | ".join(f"{str(d['date'])[5:]} {d['day']}" for d in daily) + " |",
                "|" + "---|" * len(daily),
                "| " + " | ".join(fmt_int(d["count"]) or "-" for d in daily) + " |"]
    if weekly:
        out += ["", "Weekly totals (Monday to Sunday; 0 = the event's week):", "",
                "| " + " | ".join(f"{w['weeks_from_event']:+d}" if w["weeks_from_event"] else "0"
                                  for w in weekly) + " |",
                "|" + "---|" * len(weekly),
                "| " + " | ".join((fmt_int(w["count"]) or "-") + ("*" if w["n_missing"] else "")
                                  for w in weekly) + " |"]
        if any(w["n_missing"] for w in weekly):
            out.append("\n\\* the week has missing days; its total is over the observed ones.")
    if rep:
        zones = [k[6:-1] for k in rep[0] if k.startswith("ours (")]
        out += ["", "Published counts (TorrentFreak, from the Predb.org pre-database) against the nZEDb data "
                    "(`data/published_counts.csv`, `data/processed/seed_numbers.csv`):", "",
                "| period | published | " + " | ".join(f"ours, {z} days | difference" for z in zones) + " |",
                "|---|---|" + "---|---|" * len(zones)]
        for r in rep:
            period = f"week of {r['period_start']}" if r["quantity"] == "week" else str(r["period_start"])
            cells = []
            for z in zones:
                pct = r.get(f"difference % ({z})")
                cells += [fmt_int(r.get(f"ours ({z})")), "" if pct is None else f"{pct:+.1f} %"]
            out.append(f"| {period} | {fmt_int(r['published'])} | " + " | ".join(cells) + " |")
    return out


def update_readme(run_dir: str | Path = "results/sparks-2020", readme: str | Path = "README.md",
                  robustness_dir: str | Path | None = "results/sparks-2020-robustness",
                  events_groups_dir: str | Path | None = "results/sparks-2020-events-groups") -> Path:
    """Rewrite the README's results block from the run directories; copy their figures and results."""
    import json

    root = repo_root()
    run_dir = Path(run_dir) if Path(run_dir).is_absolute() else root / run_dir
    res = json.loads((run_dir / "results.json").read_text())
    (root / FIGURE).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / "figures" / "fit.png", root / FIGURE)
    shutil.copyfile(run_dir / "figures" / "path.png", root / PATH_FIGURE)
    atomic_write_text(root / RESULTS_COPY, dumps_json(res))
    rob = None
    if robustness_dir is not None:
        rdir = Path(robustness_dir) if Path(robustness_dir).is_absolute() else root / robustness_dir
        if (rdir / "results.json").is_file():
            rob = json.loads((rdir / "results.json").read_text())
            shutil.copyfile(rdir / "figures" / "specification_curve.png", root / CURVE_FIGURE)
            shutil.copyfile(rdir / "figures" / "break_scan.png", root / BREAKS_FIGURE)
            atomic_write_text(root / ROBUSTNESS_COPY, dumps_json(rob))
    evg = None
    if events_groups_dir is not None:
        edir = Path(events_groups_dir) if Path(events_groups_dir).is_absolute() else root / events_groups_dir
        if (edir / "results.json").is_file():
            evg = json.loads((edir / "results.json").read_text())
            shutil.copyfile(edir / "figures" / "family_effects.png", root / FAMILIES_FIGURE)
            atomic_write_text(root / EVENTS_GROUPS_COPY, dumps_json(evg))
    path = root / readme
    text = path.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    atomic_write_text(path, f"{head}{START}\n{results_block(res, rob, evg)}\n{END}{tail}")
    return path


if __name__ == "__main__":  # pragma: no cover
    update_readme(*sys.argv[1:2])
