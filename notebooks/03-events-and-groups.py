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
# # Where did the work go? Sections, P2P, groups, and several raids at once
#
# The event study (`02-event-study`) asks whether the total fell. This notebook asks where
# the fall happened and where the work went: which section families fell and how far,
# whether the P2P feed is a control for the Scene series or a destination, which release
# groups stopped and which started, whether the survivors grew, and whether raids in
# general (not just this one) move supply. The defaults are the SPARKS raids of 25 August
# 2020; every number below is computed in this run from the parameters in the next cell.
# Sections (a) and (b) use the event of the study; section (c) uses every catalogue event
# the data can hold.

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

from raidstudy.errors import ParameterError
from raidstudy.models import groups as grp
from raidstudy.models.comparison import comparison_reading, family_effects, p2p_comparison
from raidstudy.report import comparison_plot, groups_plot, tables
from raidstudy.report.plots import show_figure
from raidstudy.study.artefacts import data_sentence, study_results, write_study

P = spec.parameters
if P["series_csv"]:
    raise ParameterError("series_csv", P["series_csv"], "this notebook needs the bundled data (section families, "
                         "the P2P feed and release groups), which a CSV series does not have",
                         hint="run notebooks/02-event-study.ipynb for a series of your own")
study_feeds = [f.strip() for f in P["feeds"].split(",") if f.strip()]
# the catalogue id (so that sentences name the event) unless the study moved its date
event_arg = spec.event.id if spec.event_date.normalize() == spec.event.date.normalize() else spec.event_date
display(Markdown(f"## Design\n\n**{spec.event.name}** ({spec.event_date.date()}). "
                 f"{spec.event.description}\n\n*Source:* {spec.event.source}"))
display(Markdown(tables.to_markdown(spec.describe())))
display(Markdown(data_sentence(spec)))

# %%
# The study's own fit: its parameters, provenance and headline estimates head results.json.
results = spec.fit()
body = study_results(spec, results)
sentences = {}

# %% [markdown]
# ## (a) Which sections fell, and did the work move to P2P?
#
# Each section family's daily count on the study's feeds is fitted on its own with the
# study's event-study model (negative binomial, trend and day-of-week terms, one free
# effect per week after the event, four lead weeks, the study's window and its EWC
# covariance with design-simulated critical values). The figure shows the relative effect
# over the whole post window and over its first four weeks, as ratios to the
# counterfactual on a logarithmic axis, so that -50 % and +100 % lie equally far from zero.
# A family with too little data is listed as skipped, with the reason.

# %%
fam = family_effects(event=event_arg, feeds=study_feeds, pre_periods=P["pre_periods"],
                     post_periods=P["post_periods"], alpha=P["alpha"], seed=P["seed"])
fig_families, ax_families = comparison_plot.plot_family_effects(effects=fam)
family_table = fam.table
display(tables.readable(family_table))
show_figure(fig_families)

# %% [markdown]
# The P2P feed `xrelp2p` was not the raid's target, so it looks like a control series; but
# if the work moved there it is a destination instead, and a difference-in-differences
# against it would overstate the Scene drop. Both readings side by side: the DiD of the
# Scene series against P2P (weekly relative-time bins, day effects, a Scene-specific trend
# and weekday pattern) and the P2P series' own effect against its own pre-event trend.

# %%
cmp = p2p_comparison(event=event_arg, treated_feeds=study_feeds, pre_periods=P["pre_periods"],
                     post_periods=P["post_periods"], alpha=P["alpha"], seed=P["seed"])
fig_p2p, axes_p2p = comparison_plot.plot_p2p_comparison(comparison=cmp)
sentences["p2p_reading"] = comparison_reading(cmp)
display(Markdown(sentences["p2p_reading"]))
p2p_table = cmp.table()
display(tables.readable(p2p_table))
show_figure(fig_p2p)

# %% [markdown]
# ## (b) Displacement across release groups
#
# Groups come and go all the time, so each statistic of the event is set beside its
# **base rate**: the same statistic on placebo dates every 14 days of the history whose
# windows are complete and hold no catalogued event. A group *exits* when it had at least
# 20 Scene releases in the 90 days before and none in the 90 days from the event on, and
# *enters* when it had none before and at least 20 after; a day that was not collected
# cannot show a release, so the windows' missing days are counted and a window with too
# many is left out (for the event: an error). Shares are shares of the bundled groups'
# volume (groups with at least 20 releases over the whole range).

# %%
counts = grp.group_counts(feed_set="scene", data_dir=P["data_dir"])
turnover = grp.group_turnover(counts, event=event_arg)
sentences["group_turnover"] = turnover.sentence()
display(Markdown(sentences["group_turnover"]))
fig_turnover, axes_turnover = groups_plot.plot_turnover(turnover=turnover)
turnover_table = turnover.table()
display(tables.readable(turnover_table.set_index("statistic")))
show_figure(fig_turnover)

# %% [markdown]
# Concentration over groups: the Herfindahl index (the sum of squared shares; its inverse
# is the effective number of groups) and the share of the ten largest groups, before and
# after, with every placebo date as a grey line.

# %%
fig_concentration, axes_concentration = groups_plot.plot_concentration(turnover=turnover)
top_groups = (turnover.groups[turnover.groups["status"].isin(["exit", "entry"])]
              .sort_values(["status", "pre", "post"], ascending=[True, False, False]).groupby("status").head(10))
display(tables.readable(top_groups.set_index("group")))
show_figure(fig_concentration)

# %% [markdown]
# ### Did the surviving groups grow?
#
# A group-level panel event study (`linearmodels.PanelOLS`, group and relative-week
# effects). Units are the groups with at least 20 releases in the 28 weeks before the
# event that released again in the 29 weeks after (exits are zero after by construction
# and are counted above). Conditioning on survival selects groups, so the comparison is
# the survivors of placebo dates (five, evenly spread over the eligible ones) selected in
# the same way: the estimate is how much more (or less) the event's survivors released per
# week after the event, relative to their own pre-event level, than survivors usually do.
# The outcome is log(1 + weekly releases). Standard errors are clustered by group and,
# side by side for the pooled effect, Driscoll-Kraay (correlation across groups within a
# week and over nearby weeks); the weekly path uses the clustered ones.

# %%
panel_study = grp.GroupPanelStudy(counts, event_arg)
panel_cl = panel_study.fit(cov_type="clustered", dynamic=False)
panel_dk = panel_study.fit(cov_type="kernel", dynamic=False)
panel_path = panel_study.fit(cov_type="clustered", dynamic=True)
sentences["group_panel"] = grp.panel_sentence(panel_cl, panel_dk, alpha=P["alpha"])
sentences["group_panel_path"] = grp.panel_sentence(panel_path, alpha=P["alpha"])
display(Markdown(sentences["group_panel"] + "\n\n" + sentences["group_panel_path"]))
fig_panel, ax_panel = groups_plot.plot_panel_path(results=panel_path, alpha=P["alpha"])
print(panel_cl.summary(alpha=P["alpha"]))
print(panel_dk.summary(alpha=P["alpha"]))
show_figure(fig_panel)

# %% [markdown]
# ## (c) Several raids at once
#
# One raid is one event. A stacked event study with clean controls pools every catalogue
# event the data can hold (`raidstudy.models.staggered`, `docs/staggered.md`): the units
# are feed x section-family series, each event treats the series of its target type (Scene
# raids the Scene series, P2P raids the P2P series), streaming and IPTV cases enter as
# expected-null placebo events, and a series is a control for an event only when no real
# raid reaches it from 52 weeks before the window to its end. Outcome: log(1 + mean daily
# releases) per week, 12 weeks either side; standard errors clustered by series.

# %%
from raidstudy.models.staggered import catalogue_study

stacked = catalogue_study(data_dir=P["data_dir"])
stacked_table = stacked.table(alpha=P["alpha"])
sentences["staggered"] = stacked.sentence(alpha=P["alpha"])
display(Markdown(sentences["staggered"]))
stacked_events = stacked.events[["event", "date", "target_class", "used", "status"]]
display(Markdown(tables.to_markdown(tables.readable(stacked_table))))
tables.readable(stacked_events.set_index("event"))

# %%
import matplotlib.pyplot as plt

fig_stacked, ax_stacked = plt.subplots(figsize=(8, 3.8), layout="constrained")
stacked.by_target.plot_event_study(ax=ax_stacked, alpha=P["alpha"])
ax_stacked.set_title("Stacked event study by target class: effect on log(1 + daily releases) by week")
show_figure(fig_stacked)

# %%
body["family_effects"] = fam.to_dict()
body["p2p_comparison"] = cmp.to_dict()
body["groups"] = {"turnover": turnover.to_dict(),
                  "panel": {"clustered": panel_cl.to_dict(alpha=P["alpha"]),
                            "driscoll_kraay": panel_dk.to_dict(alpha=P["alpha"]),
                            "path": panel_path.to_dict(alpha=P["alpha"])}}
body["staggered"] = stacked.to_dict(alpha=P["alpha"])
body["sentences"] = sentences
written = write_study(
    spec, body,
    figures={"family_effects": fig_families, "p2p_comparison": fig_p2p, "group_turnover": fig_turnover,
             "group_concentration": fig_concentration, "group_panel_path": fig_panel,
             "stacked_event_study": fig_stacked},
    tables_={
        "family_effects": (family_table, f"Effects by section family: {spec.event.name}"),
        "p2p_comparison": (p2p_table, "Scene and P2P: own effects and the DiD"),
        "group_turnover": (turnover_table.drop(columns="meaning"), "Group entry, exit and concentration against "
                                                                   "placebo dates"),
        "group_panel_path": (panel_path.path(alpha=P["alpha"]), "Surviving groups' weekly path against placebo survivors"),
        "stacked_study": (stacked_table, "Stacked event study across catalogue events"),
    },
)
display(Markdown(f"Artefacts written to `{P['output_dir']}`: "
                 + ", ".join(f"`{f}`" for fs in written.values() for f in fs)))
