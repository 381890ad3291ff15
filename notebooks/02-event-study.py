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
# # What did the raid do to the supply of pirated releases?
#
# An interrupted-time-series (ITS) study of one enforcement event and one piracy-volume
# indicator. The defaults are the SPARKS raids of 25 August 2020 ("Operation Tangled Web"),
# measured by the Scene releases that the public nZEDb pre-database logged each day.
# Every number in the text below is computed in this run from the parameters in the
# next cell; change them (or pass `-p NAME VALUE` to `raidstudy run`) to study another
# event or indicator.

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

from raidstudy.report import narrative, plots, tables
from raidstudy.study.artefacts import (
    counts_around_event, counts_tables, data_sentence, diagnostics_table, dynamic_analysis, dynamic_results,
    placebo_check, placebo_sentence, robustness, sensitivity_table, study_results, write_study,
)

display(Markdown(f"## Design\n\n**{spec.event.name}** ({spec.event_date.date()}). "
                 f"{spec.event.description}\n\n*Source:* {spec.event.source}"))
display(Markdown(tables.to_markdown(spec.describe())))

# %% [markdown]
# ## The indicator around the event
#
# The outcome is summed over the selected feeds and section families. A day on which any
# selected feed was not collected is missing (a gap in the line), never a zero: an outage
# of the pre-database would otherwise look like a raid.

# %%
fig_series, ax_series = plots.plot_series(
    series=spec.outcome, event_date=spec.event_date, control=spec.control, title=spec.outcome_label
)
display(Markdown(data_sentence(spec)))
plots.show_figure(fig_series)

# %% [markdown]
# ### The counts behind the headline
#
# Each day of the week before and after the event, and weekly totals (Monday to Sunday)
# either side of the event's week, straight from the indicator. When the event has
# published counts (the SPARKS raid: TorrentFreak, counting from the Predb.org
# pre-database), the same days and weeks counted in the nZEDb data are set beside them, in
# UTC days (the study's) and in Central European days (the pre-databases' own clock).

# %%
counts = counts_around_event(spec)
count_tables = counts_tables(counts)
for name, (table, caption) in count_tables.items():
    display(Markdown(f"**{caption}**\n\n" + tables.to_markdown(table)))

# %% [markdown]
# ## What happened after the event: the dynamic path
#
# The first model leaves the post-event path free: one effect for each bin of periods
# after the event (weeks for daily data), and lead bins before it, on top of the pre-event
# trend and the weekly pattern. Its counterfactual is the pre-event trend and seasonality
# carried forward; the effect over the whole post window compares the observed series with
# it. Every interval uses the study's covariance (by default the equal-weighted cosine
# long-run variance, EWC) with a critical value simulated for this design and this
# quantity, the method whose coverage was measured on a simulator calibrated on this
# kind of series (`docs/coverage.md`). A single week is hard to pin down when the series is
# this persistent, so single-bin intervals are wide; longer stretches are precise.

# %%
results = spec.fit()
event_study, dynamic = dynamic_analysis(spec, results)
fig_path, ax_path = plots.plot_event_study(results=event_study, alpha=spec.parameters["alpha"],
                                           title=f"{spec.outcome_label}: effect by bin after the event")
plots.show_figure(fig_path)

# %%
body = study_results(spec, results, dynamic=dynamic_results(spec, event_study, dynamic))
body["counts"] = counts
sentences = narrative.sentences(body, outcome_label=spec.outcome_label, event_label=spec.event.name,
                                unit=body["model"]["unit"])
body["sentences"] = sentences
display(Markdown("\n\n".join(sentences[k] for k in ("relative", "path", "decay", "recovery", "cumulative")
                              if k in sentences)))
path_table = tables.path_table(event_study, alpha=spec.parameters["alpha"])
path_table

# %% [markdown]
# The step-plus-decay summary and the other shapes of the post-event path, compared by
# AIC (lower is better):

# %%
tables.readable(dynamic.table)

# %% [markdown]
# ## The segmented regression (comparable with Stata's `itsa`)
#
# The classic interrupted-time-series model describes the post-event path by a jump at the
# event (`level`) and a change of trend (`slope`), with the same trend, day-of-week and
# seasonal terms. Count families report them as rate ratios. Its straight line is tested
# against the free path above; when the test rejects it, the line's level, slope and
# recovery time misdescribe what happened, and the numbers above are the ones to quote.

# %%
results.summary()

# %%
fig_fit, ax_fit = plots.plot_fit(results=results, alpha=spec.parameters["alpha"],
                                 title=f"{spec.outcome_label}: observed, fitted and counterfactual")
display(Markdown("\n\n".join(sentences[k] for k in ("level", "slope") if k in sentences)))
effects = tables.effects_table(body, alpha=spec.parameters["alpha"])
display(effects[["display"]])
plots.show_figure(fig_fit)

# %% [markdown]
# ## How much does the answer depend on the specification?
#
# The level change re-estimated under alternative choices, one at a time: a longer
# pre-period (which lets annual seasonality be told apart from the trend), other families,
# other transition periods, no slope change, more HAC lags and, for the bundled data, the
# P2P feed `xrelp2p` as a control series (P2P groups were not the raid's target; in that
# comparative model the effect is the treated-minus-control difference `treated_level`).

# %%
sensitivity = sensitivity_table(spec)
tables.readable(sensitivity[["family", "term", "display", "p_value", "nobs", "note"]])

# %% [markdown]
# ## Would any other stretch of the history have looked as extreme?
#
# The same model, with the same window design (as many periods before and after a fake
# event), is refitted on non-overlapping windows of the whole indicator outside the study
# window; windows holding another catalogued enforcement event are left out. Only these
# independent windows give a p-value, and with few of them the smallest attainable p-value
# is large: the sentence below says how large. A dense set of overlapping placebo dates
# shows, descriptively, how large a jump, and how large a t statistic, the series produces
# by itself (outages, breaks, seasonality the model misses).

# %%
placebo = placebo_check(spec, results)
if placebo is not None:
    fig_placebo, ax_placebo = plots.plot_placebo(placebo=placebo)
    sentences["placebo"] = placebo_sentence(
        placebo, event_label=spec.event.name, alpha=spec.parameters["alpha"],
        critical_value=results.critical_value(results.model.design.headline["level"], spec.parameters["alpha"]))
display(Markdown(sentences.get("placebo", "No placebo check was run (`n_placebos` is 0, or the pre-event "
                                           "window is too short for one; results.json says which).")))
if placebo is not None:
    plots.show_figure(fig_placebo)

# %% [markdown]
# ## Diagnostics
#
# Residual autocorrelation is tested (Ljung-Box, Breusch-Godfrey), and the level change is
# re-estimated with ARMA(1,1) errors (the same terms on the log scale, the ARMA terms by
# exact maximum likelihood and the coefficients from statsmodels' Kalman filter) as a
# robustness check. Its intervals treat the estimated ARMA terms as known and under-cover
# on persistent series (the measured coverage is quoted in the table), so it is a check on
# the point estimate more than on the interval.

# %%
fig_resid, axes_resid = plots.plot_residuals(results=results)
body["robustness"] = robustness(spec, results, sensitivity, placebo)
display(tables.readable(diagnostics_table(body)))
plots.show_figure(fig_resid)

# %%
estimates = tables.estimates_table(results, alpha=spec.parameters["alpha"])
written = write_study(
    spec, body,
    figures={"series": fig_series, "path": fig_path, "fit": fig_fit, "residuals": fig_resid,
             **({"placebo": fig_placebo} if placebo is not None else {})},
    tables_={
        "path": (path_table, f"Effect of {spec.event.name} on {spec.outcome_label} by bin"),
        "dynamic_shapes": (dynamic.table, "Shapes of the post-event path compared by AIC"),
        "effects": (effects, f"Segmented-regression effects of {spec.event.name} on {spec.outcome_label}"),
        "estimates": (estimates, f"Segmented-regression estimates ({spec.parameters['model_family']})"),
        "sensitivity": (sensitivity[["family", "term", "display", "p_value", "nobs", "note"]],
                        "Level change under alternative specifications"),
        **count_tables,
    },
)
display(Markdown(f"Artefacts written to `{spec.parameters['output_dir']}`: "
                 + ", ".join(f"`{f}`" for fs in written.values() for f in fs)))
