"""Command line: ``python -m raidstudy.models.staggered {bias,study,fixest}`` (the numbers quoted in docs/staggered.md).

* ``bias [--reps 200] [--seed 0]``: bias, RMSE and coverage table on SIMULATED panels;
* ``study [--pre 12 --post 12 --washout 52 --cov-type clustered]``: the stacked study over the
  catalogue events in the bundled data, by target class;
* ``fixest [CSV]``: Sun-Abraham on fixest's base_stagg beside fixest's printed numbers.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m raidstudy.models.staggered", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bias")
    b.add_argument("--reps", type=int, default=200)
    b.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("study")
    s.add_argument("--pre", type=int, default=12)
    s.add_argument("--post", type=int, default=12)
    s.add_argument("--washout", type=int, default=52)
    s.add_argument("--overlap", default="drop")
    s.add_argument("--cov-type", default="clustered")
    f = sub.add_parser("fixest")
    f.add_argument("csv", nargs="?", default=str(Path(__file__).resolve().parents[4]
                                                 / "tests/models/validation/fixest_base_stagg/base_stagg.csv"))
    a = ap.parse_args(argv)
    pd.set_option("display.width", 200)
    if a.cmd == "bias":
        from raidstudy.models.staggered.simulate import bias_table

        tab = bias_table(a.reps, seed=a.seed)
        print(f"SIMULATED: {a.reps} replications (seeds {a.seed}..{a.seed + a.reps - 1}) of simulate_staggered(): "
              "90 units, 12 periods, cohorts 3/6/9 and 25% never treated, effects 3/2/1 growing by half per period")
        print(tab.to_markdown(index=False, floatfmt=".3f"))
    elif a.cmd == "study":
        from raidstudy.models.staggered import catalogue_study

        st = catalogue_study(pre=a.pre, post=a.post, washout=a.washout, overlap=a.overlap, cov_type=a.cov_type)
        print(st.events[["event", "time", "target_class", "used", "status"]].to_markdown(index=False))
        print()
        cols = ["target_class", "events", "estimate", "std_error", "ci_low", "ci_high", "p_value", "pct",
                "pct_ci_low", "pct_ci_high"]
        print(st.table()[cols].to_markdown(index=False, floatfmt=".3f"))
        print()
        print(st.by_target.summary())
    else:
        from raidstudy.models.staggered import SunAbraham

        df = pd.read_csv(a.csv)
        res = SunAbraham(df, outcome="y", unit="id", time="year", cohort="year_treated", covariates="x1").fit()
        print(res.summary())
        print("fixest walkthrough vignette (lrberge/fixest dbe56c5), summary(res_sa20, agg = 'att'): x1 0.994678 (0.018378), "
              "ATT -1.133749 (0.205070), t -5.52858, p 2.882e-07")


if __name__ == "__main__":
    main()
