# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Does the answer survive every reasonable choice?
#
# The event study (`02-event-study`) reports one specification: one window, one model
# family, one seasonality, one way of computing intervals, one definition of the indicator.
# Each of those choices is defensible, and so are others. This notebook re-estimates the
# study under every combination of reasonable alternatives, a *specification curve*, and
# asks how much the headline numbers move: the effect over the post window relative to the
# counterfactual, and the level change at the event. The defaults are the SPARKS raids of
# 25 August 2020; every number below is computed in this run from the parameters in the
# next cell.

# %% tags=["parameters"]
event_id = "sparks_2020"
event_date = ""
feeds = "#pre@corrupt,xrel"
families = "all"
measure = "n_releases"
control_feeds = ""
data_dir = "data/processed"
series_csv = ""
series_name = ""
control_series = ""
period_label = "auto"
pre_periods = 365
post_periods = 120
transition_periods = 1
model_family = "negbin"
slope = True
dow = True
fourier = 0
holidays = ""
cov_type = "ewc"
ewc_terms = 6
hac_lags = "auto"
small_sample = False
alpha = 0.05
recovery_share = 0.9
n_sim = 2000
seed = 20200825
n_placebos = 500
output_dir = "results/sparks-2020"

# %%
from raidstudy.study.parameters import notebook_parameters, validate_parameters

# Every parameter goes through the one validation function that the CLI and the batch
# runner use: an unknown name or a bad value stops here, before any model is fitted.
spec = validate_parameters(notebook_parameters(globals()))

# %%
from IPython.display import Markdown, display

from raidstudy.models.speccurve import default_grid, specification_curve
from raidstudy.report import plots, tables
from raidstudy.report.speccurve_plot import plot_specification_curve
from raidstudy.study.artefacts import break_analysis, break_sentences, data_sentence, study_results, write_study

display(Markdown(f"## Design\n\n**{spec.event.name}** ({spec.event_date.date()}). "
                 f"{spec.event.description}\n\n*Source:* {spec.event.source}"))
display(Markdown(tables.to_markdown(spec.describe())))
display(Markdown(data_sentence(spec)))

# %% [markdown]
# ## The study's own specification
#
# The specification the event study reports, for reference: its relative effect over the
# post window and its level change are the points the curve below is built around.

# %%
results = spec.fit()
body = study_results(spec, results)
rel = body["effects"]["relative"]
lvl = body["effects"]["level"]
display(Markdown(
    f"Study specification: relative effect over the post window {rel['pct']:+.1f}% "
    f"({100 * (1 - spec.parameters['alpha']):g}% CI {rel['pct_ci_low']:+.1f}% to {rel['pct_ci_high']:+.1f}%); "
    f"level change at the event {lvl['estimate']:+.3g} on the model's scale"
    + (f" ({lvl['pct']:+.1f}%)." if "pct" in lvl else ".")))

# %% [markdown]
# ## The specification curve
#
# The grid varies, all at once: the length of the pre-event window (half, equal to and
# twice the study's), the post-event window (half and equal), the transition periods left
# out of the fit (none, or the study's), the model family (negative binomial,
# quasi-Poisson, and a gaussian model on the counts), annual seasonality (no Fourier terms
# or two pairs), the inference method (the EWC long-run variance with design-simulated
# critical values, or Newey-West HAC) and, for the bundled data, a control series (none,
# or the P2P feed `xrelp2p`, which the raid did not target). Every combination is one
# specification, estimated as the study would be with those parameters. A specification
# the data cannot support (for example annual terms with under a year of pre-event data)
# stays in the table with the reason, and is left out of the statistics.
#
# For count families the level change is the rate ratio as a percentage change; for the
# gaussian model it is the jump as a percentage of the counterfactual in the event period,
# so that every specification is on one scale.

# %%
grid = default_grid(spec)
curve = specification_curve(spec, grid)
display(Markdown(curve.sentence("relative") + "\n\n" + curve.sentence("level")))
curve_summary = curve.summary()
tables.readable(curve_summary)

# %% [markdown]
# The figure sorts the specifications by their estimate of the relative effect over the
# post window; each has its confidence interval (blue when it excludes zero, grey when it
# does not), the study's own specification is circled, and the matrix beneath marks which
# choices each specification made.

# %%
fig_relative, axes_relative = plot_specification_curve(curve=curve, quantity="relative")
plots.show_figure(fig_relative)

# %% [markdown]
# The same for the level change at the event (the `itsa`-comparable jump):

# %%
fig_level, axes_level = plot_specification_curve(curve=curve, quantity="level")
plots.show_figure(fig_level)

# %% [markdown]
# ## Which choices move the answer?
#
# For every value of every choice: how many specifications with it could be estimated,
# their median relative effect, and the share whose interval excludes zero. A value whose
# median stands apart from the others of its choice is one the answer depends on.

# %%
by_choice = curve.by_choice("relative")
tables.readable(by_choice)

# %% [markdown]
# ## Break dating
#
# Would the data, unaided, date a break on the raid day? The same model without any event
# terms is scanned for one break in level and slope at every admissible date (the central
# 70 % of the window): the largest Wald statistic dates the break, its p-value allows for
# the search (Andrews 1993, Hansen 1997), and Bai's (1997) interval gives the uncertainty
# of the date. Bai and Perron's method then allows several breaks (on the log scale for
# count data), their number chosen by a sequential test and by BIC.

# %%
scan, bai_perron = break_analysis(spec)
fig_breaks, ax_breaks = plots.plot_break_scan(scan=scan, event_date=spec.event_date)
break_text = break_sentences(scan, bai_perron, event_date=spec.event_date, event_label=spec.event.name)
display(Markdown("\n\n".join(break_text.values())))
display(tables.readable(bai_perron.bic_table))
plots.show_figure(fig_breaks)

# %%
body["specification_curve"] = curve.to_dict()
body["breaks"] = {"scan": scan.to_dict(), "bai_perron": bai_perron.to_dict()}
body["sentences"] = {"specification_curve_relative": curve.sentence("relative"),
                     "specification_curve_level": curve.sentence("level"), **break_text}
curve_table = curve.table[curve.choices + ["relative_estimate", "relative_ci_low", "relative_ci_high",
                                           "level_estimate", "level_ci_low", "level_ci_high", "nobs", "note"]]
written = write_study(
    spec, body,
    figures={"specification_curve": fig_relative, "specification_curve_level": fig_level,
             "break_scan": fig_breaks},
    tables_={
        "specification_curve_summary": (curve_summary, f"Specification curve of {spec.event.name}: summary"),
        "specification_curve_by_choice": (by_choice, "Relative effect over the post window by choice"),
        "specification_curve": (curve_table, f"Every specification of the curve ({len(curve_table)})"),
        "breaks_bic": (bai_perron.bic_table, "Several breaks (Bai and Perron): fit by number of breaks"),
    },
)
display(Markdown(f"Artefacts written to `{spec.parameters['output_dir']}`: "
                 + ", ".join(f"`{f}`" for fs in written.values() for f in fs)))
