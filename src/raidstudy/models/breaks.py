r"""Break dating: where would the data, unaided, put a break?

Two models on the ITS trend-and-seasonal design (``const``, ``trend``, day of week,
annual Fourier pairs, holidays), for a series on its regular grid (missing periods are
left out, never zero):

* :class:`BreakScan`: the sup-Wald (Quandt likelihood-ratio) scan for **one** break in
  level (or level and slope) over every admissible date, its p-value from Hansen's
  (1997) approximation to Andrews' (1993) limiting distribution, the least-squares /
  maximum-likelihood break date and Bai's (1997) confidence interval for it. Gaussian on
  counts or logs, and the count families (Poisson, quasi-Poisson, NB2).
* :class:`BaiPerron`: several breaks (Bai and Perron 1998, 2003) by dynamic programming
  over segment sums of squared residuals, the number of breaks by the sequential
  sup-F(l+1|l) test and by BIC, each break with its interval.

Conventions: the **date** of a break is the first period of the new regime (the ITS
event period); ``breakpoint`` is the number of fitted observations before it (what R's
``strucchange`` prints: the last observation of the old regime, counted from 1).
See ``docs/its.md``, section "Break dating".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from raidstudy.errors import DataError, ModelError, ParameterError
from raidstudy.models.its.covariance import nw_plugin_lags
from raidstudy.models.its.data import format_label, normalize_data, resolve_dates
from raidstudy.models.its.design import build_design
from raidstudy.models.its.fitting import fit_model
from raidstudy.models.its.vocabulary import COUNT_FAMILIES, FAMILIES

__all__ = ["BreakScan", "BreakScanResults", "BaiPerron", "BaiPerronResults",
           "sup_f_pvalue", "sup_f_critical", "break_date_interval"]

BREAK_TERMS = ("level", "slope")
COV_CHOICES = ("hac", "iid")

# --------------------------------------------------------------------------- Hansen (1997)
#: Response-surface coefficients of Hansen (1997), "Approximate asymptotic p values for
#: structural-change tests", JBES 15:60-67, for the sup-F (sup-Wald) statistic: for q = 1..10
#: restricted parameters, 25 rows for tau = 0.49, 0.47, ..., 0.01 (tau = trimming of a
#: symmetric search range), each (b0, b1, df): the p-value is
#: ``1 - Chi2_df.cdf(max(b0 + b1 * x, 0))``. Transcribed from the table distributed with
#: R's strucchange (``R/pvalue.Fstats.R``, object ``sc.beta.sup``, first 250 rows), which
#: reproduces Hansen's published coefficients.
_HANSEN_SUP = np.array([
    # q = 1: tau = 0.49, 0.47, ..., 0.01
    -0.0648467, 0.99671156, 1.2573241, -0.15305667, 0.96757645, 1.43651315,
    -0.23071675, 0.95825013, 1.56531261, -0.29247661, 0.95715782, 1.68851898,
    -0.35706588, 0.95237505, 1.77889686, -0.40514715, 0.96055795, 1.89761322,
    -0.45248386, 0.95810999, 1.98370422, -0.50458517, 0.96149538, 2.07086519,
    -0.55009159, 0.96684273, 2.17244338, -0.60241623, 0.96518399, 2.23509053,
    -0.64308746, 0.97354902, 2.33722161, -0.68833676, 0.97829106, 2.42776524,
    -0.73136161, 0.9820687, 2.50833918, -0.78078198, 0.99475319, 2.6209551,
    -0.82894221, 1.00023473, 2.70286643, -0.88430133, 1.00162529, 2.77835798,
    -0.9499265, 1.00384268, 2.84325795, -0.98828874, 1.01604712, 2.96752918,
    -1.04892713, 1.02570939, 3.08442682, -1.11527783, 1.03526033, 3.19770394,
    -1.14992644, 1.06643436, 3.44739573, -1.24010871, 1.06929468, 3.54993605,
    -1.38522113, 1.06808543, 3.61667211, -1.48296473, 1.1283969, 4.07202473,
    -1.78738608, 1.17220925, 4.4726701,
    # q = 2: tau = 0.49, 0.47, ..., 0.01
    -0.03933112, 0.99525784, 2.44239332, -0.14650989, 0.9938654, 2.78837829,
    -0.28765583, 0.98139359, 2.93724618, -0.35528752, 0.9942739, 3.18187129,
    -0.49538961, 0.96923268, 3.19484388, -0.58780544, 0.97339124, 3.32763253,
    -0.66900489, 0.97444133, 3.44170617, -0.77825803, 0.96678414, 3.48652761,
    -0.87260977, 0.97626434, 3.61709836, -0.96782445, 0.97636983, 3.6779502,
    -1.07358977, 0.97407744, 3.71945379, -1.12531079, 0.99897105, 3.95114475,
    -1.16041007, 1.01629918, 4.14932643, -1.2975797, 1.015268, 4.17103882,
    -1.36743697, 1.03004743, 4.3223804, -1.43012785, 1.05139461, 4.53836755,
    -1.53311747, 1.05280599, 4.61175851, -1.65273586, 1.05932633, 4.69340428,
    -1.79350728, 1.04936541, 4.68380985, -1.9117747, 1.0588459, 4.8073354,
    -2.02659329, 1.07200268, 4.97772701, -2.18499383, 1.08674781, 5.14231666,
    -2.3765858, 1.11342895, 5.40268693, -2.51267262, 1.15305027, 5.88573096,
    -3.05559851, 1.17629253, 6.11067794,
    # q = 3: tau = 0.49, 0.47, ..., 0.01
    -0.1250856, 0.98151496, 3.43036267, -0.27323021, 0.98324873, 3.83943122,
    -0.43148524, 0.98336371, 4.07662685, -0.48172245, 1.00450689, 4.44796533,
    -0.6898932, 0.99692978, 4.49665381, -0.7928579, 1.00417536, 4.69772537,
    -0.85066146, 1.01852003, 4.95584784, -1.06133796, 1.00719185, 4.90812703,
    -1.11977435, 1.03046019, 5.20741484, -1.20203015, 1.03885443, 5.3693925,
    -1.28736105, 1.04597379, 5.52416853, -1.45874969, 1.03549948, 5.4888527,
    -1.60889159, 1.03374376, 5.50958245, -1.64346161, 1.06767681, 5.89426861,
    -1.68334797, 1.09676432, 6.23634969, -1.81974576, 1.10216977, 6.34122715,
    -2.02648892, 1.0962988, 6.29077373, -2.04820499, 1.13491785, 6.75208304,
    -2.3230492, 1.12030935, 6.59886028, -2.59516448, 1.09122076, 6.32294425,
    -2.79776102, 1.09109337, 6.35576003, -3.03865047, 1.09037434, 6.37212114,
    -3.31299004, 1.10476754, 6.5282289, -3.65667229, 1.13355758, 6.84167661,
    -4.09174097, 1.21034051, 7.79013953,
    # q = 4: tau = 0.49, 0.47, ..., 0.01
    -0.40798205, 0.90528031, 3.93318971, -0.58214849, 0.91505724, 4.41094611,
    -0.67464799, 0.9364688, 4.85980413, -0.85920669, 0.93433918, 5.01958587,
    -0.99797889, 0.9411933, 5.22477986, -1.10019761, 0.95132377, 5.46557096,
    -1.24048639, 0.96334287, 5.6723934, -1.44519417, 0.96603109, 5.73132847,
    -1.43104108, 1.00890357, 6.29613628, -1.52887344, 1.02148881, 6.51227891,
    -1.66695722, 1.02616925, 6.63448592, -1.79016819, 1.03765517, 6.82686641,
    -1.91159633, 1.04392701, 6.95318158, -1.93474222, 1.071198, 7.36997641,
    -1.94039709, 1.10122554, 7.82328663, -2.14388035, 1.09891616, 7.83079173,
    -2.34856811, 1.10457466, 7.89044965, -2.52186324, 1.10727065, 7.95561422,
    -2.81381108, 1.10513873, 7.90116455, -3.02543477, 1.12012324, 8.08624226,
    -3.3338615, 1.12405358, 8.08884313, -3.70012182, 1.12268437, 8.00223819,
    -4.08017759, 1.14201041, 8.18314656, -4.47426188, 1.17607899, 8.60611855,
    -5.32601074, 1.21390643, 8.90496643,
    # q = 5: tau = 0.49, 0.47, ..., 0.01
    -0.11619422, 1.02457601, 5.80252297, -0.46546717, 1.01129094, 6.12710758,
    -0.74391826, 1.00172704, 6.30619245, -1.02744491, 0.9890919, 6.35729244,
    -1.26392205, 0.98620432, 6.4591257, -1.42145334, 0.9972466, 6.71491425,
    -1.65407989, 0.99253425, 6.740473, -1.81536469, 1.0044353, 6.95402735,
    -2.02334533, 1.00046922, 6.98677984, -2.09938834, 1.01518764, 7.27464455,
    -2.20567987, 1.02275886, 7.47265174, -2.44943836, 1.02127435, 7.46129265,
    -2.63257362, 1.01887636, 7.46907351, -2.81161264, 1.02006744, 7.52690766,
    -2.98179286, 1.0305527, 7.67224919, -3.13342287, 1.0446574, 7.90265755,
    -3.30649507, 1.05369295, 8.05397638, -3.4646422, 1.06781143, 8.27206632,
    -3.54117909, 1.10989892, 8.90945304, -3.53272742, 1.15870693, 9.72776829,
    -3.80907119, 1.17183781, 9.91294592, -4.20676069, 1.17153767, 9.84654688,
    -4.84259892, 1.14601974, 9.30420469, -5.47685207, 1.15819167, 9.30236461,
    -6.39138173, 1.17642784, 9.41930982,
    # q = 6: tau = 0.49, 0.47, ..., 0.01
    -0.0687869, 1.03775792, 7.09045346, -0.33471313, 1.03320405, 7.62520471,
    -0.58645046, 1.03391895, 7.96566986, -0.84305517, 1.03864019, 8.22807265,
    -1.17255237, 1.02620388, 8.19864669, -1.46491217, 1.01747206, 8.192869,
    -1.55238215, 1.02887917, 8.53383279, -1.79236992, 1.02880434, 8.59456107,
    -1.78127768, 1.06533575, 9.2685801, -2.21251422, 1.04598986, 8.91322396,
    -2.47288843, 1.04669836, 8.92953537, -2.61217463, 1.05733536, 9.17320934,
    -2.93562547, 1.04956126, 9.00301305, -3.34428329, 1.03025578, 8.63825734,
    -3.48448133, 1.04393869, 8.87565157, -3.64732289, 1.05837582, 9.13002628,
    -3.79479594, 1.07938759, 9.47650111, -4.04745714, 1.08339951, 9.51466537,
    -4.13484904, 1.11380916, 10.08288929, -4.27469148, 1.13359417, 10.47680321,
    -4.61491387, 1.14810477, 10.64305003, -4.91271109, 1.18479646, 11.1806159,
    -5.37456783, 1.1930588, 11.24873153, -6.01333062, 1.22140239, 11.55114952,
    -7.08021496, 1.25536339, 11.84388128,
    # q = 7: tau = 0.49, 0.47, ..., 0.01
    -0.53689878, 0.95219603, 7.1028369, -0.58562073, 0.98400121, 8.16310859,
    -0.95896123, 0.97640322, 8.31297248, -1.31359234, 0.97126847, 8.39458871,
    -1.55985878, 0.97651275, 8.6116192, -1.74442449, 0.99363695, 8.97007085,
    -2.0175967, 0.99545856, 9.05632019, -2.20599731, 1.00681619, 9.31295267,
    -2.25783227, 1.03037828, 9.83449349, -2.53419037, 1.02237747, 9.74010484,
    -2.83535247, 1.01736263, 9.65255439, -2.94857734, 1.03701081, 10.0582618,
    -3.23125462, 1.04527054, 10.13194554, -3.35534682, 1.07043687, 10.59763704,
    -3.46151576, 1.08475765, 10.91888223, -3.87863069, 1.07699402, 10.68834341,
    -4.23908351, 1.07739268, 10.59992445, -4.4191379, 1.10217153, 11.01503763,
    -4.82113958, 1.10489462, 10.94912199, -4.95712189, 1.14759912, 11.72034341,
    -5.33535348, 1.15489501, 11.78096338, -5.94327236, 1.14993703, 11.48022849,
    -6.2144914, 1.2117616, 12.57656495, -6.95870114, 1.21291275, 12.41746897,
    -8.48837563, 1.16895303, 11.0568314,
    # q = 8: tau = 0.49, 0.47, ..., 0.01
    -0.06587378, 1.00259864, 9.00416324, -0.58124366, 0.98811229, 9.29588314,
    -0.53482076, 1.02737978, 10.38413127, -0.70899479, 1.03875734, 10.86726887,
    -1.07383099, 1.03945526, 10.98596388, -1.05381577, 1.0784185, 11.87560902,
    -1.27585106, 1.10005486, 12.3098159, -1.68931537, 1.09777938, 12.24252384,
    -2.18809932, 1.08874332, 12.00013658, -2.50101866, 1.08718514, 11.97891812,
    -2.85948167, 1.08365161, 11.88283066, -3.35512723, 1.06078274, 11.38799144,
    -3.65167655, 1.06322641, 11.38822596, -4.01035186, 1.06373417, 11.32180872,
    -4.24709439, 1.07465019, 11.50213594, -4.50345226, 1.09341658, 11.80959613,
    -4.9099655, 1.08551877, 11.57319597, -5.36063931, 1.07646817, 11.25922919,
    -5.73370206, 1.07605364, 11.18469963, -6.09245707, 1.07280436, 11.07807286,
    -6.46768896, 1.0801085, 11.14611701, -6.84622409, 1.09621271, 11.40693419,
    -7.23578885, 1.12575792, 11.92603449, -7.80794405, 1.15036691, 12.32590546,
    -9.19862689, 1.17118238, 12.18766263,
    # q = 9: tau = 0.49, 0.47, ..., 0.01
    -0.8377844, 0.93113614, 8.5883869, -1.18727357, 0.93903334, 9.24954183,
    -1.67892814, 0.93065103, 9.29685978, -2.13655356, 0.92934556, 9.33656379,
    -2.40733753, 0.94488795, 9.70552238, -2.37013442, 0.97862192, 10.57272004,
    -2.49480314, 0.99988795, 11.11202863, -2.82625963, 0.99845236, 11.11899557,
    -3.17119868, 0.99862288, 11.12620845, -3.5636537, 0.99017086, 10.91577546,
    -3.88321378, 0.9946165, 10.95270011, -4.0313254, 1.01955132, 11.46852117,
    -4.38155427, 1.01232498, 11.27876602, -4.50039414, 1.03871207, 11.86056231,
    -4.87091786, 1.03085863, 11.63335876, -5.1383982, 1.03917618, 11.78048327,
    -5.39812039, 1.05170079, 11.99793995, -5.43335672, 1.10431373, 13.09302596,
    -6.18441355, 1.06499129, 12.01561699, -6.60044603, 1.07700965, 12.12034223,
    -7.11669991, 1.0808924, 12.02669094, -7.46755944, 1.09541073, 12.30726854,
    -8.07312922, 1.1095527, 12.39994474, -8.86841479, 1.11196659, 12.21815495,
    -10.22371148, 1.13939491, 12.28861527,
    # q = 10: tau = 0.49, 0.47, ..., 0.01
    -0.12732608, 1.01972827, 11.23288885, -0.77782321, 0.9982764, 11.39255875,
    -1.24808905, 0.9999548, 11.66130981, -1.76904345, 0.98955787, 11.58597271,
    -2.09486459, 0.99858018, 11.87831304, -2.30685545, 1.01743721, 12.36966797,
    -2.70509677, 1.02589592, 12.51217351, -2.92069286, 1.04951504, 13.04128558,
    -3.1997618, 1.06492822, 13.38535841, -3.6337934, 1.05272485, 13.0950741,
    -4.01274834, 1.05200434, 13.0322117, -4.50166071, 1.03350523, 12.57591029,
    -4.97277337, 1.01177319, 12.03313903, -5.21536918, 1.03214392, 12.43310006,
    -5.65195302, 1.01761463, 12.01632623, -6.06457328, 1.01623184, 11.88077482,
    -6.0595936, 1.06276209, 12.97932137, -6.46819929, 1.060171, 12.81597962,
    -6.87347962, 1.06428574, 12.80920657, -7.25454462, 1.07640874, 12.97479282,
    -7.76257167, 1.07583608, 12.81308974, -8.18205476, 1.09754669, 13.20385908,
    -8.84260296, 1.10727034, 13.19094338, -9.55384281, 1.13929623, 13.69566019,
    -11.00985153, 1.1430948, 13.27442097,]).reshape(10, 25, 3)


def _tau_of(trim: float | tuple[float, float]) -> float:
    """Hansen's tau for a search range [pi1, pi2]: symmetric trim, or 1 / (1 + sqrt(lambda))."""
    if isinstance(trim, tuple):
        p1, p2 = trim
        if abs(p1 - (1 - p2)) < 1e-12:
            return float(p1)
        lam = p2 * (1 - p1) / (p1 * (1 - p2))
        return float(1.0 / (1.0 + math.sqrt(lam)))
    return float(trim)


def sup_f_pvalue(stat: float, q: int, trim: float | tuple[float, float] = 0.15) -> float:
    r"""Asymptotic p-value of a sup-Wald (sup-F, Quandt LR) statistic.

    Parameters
    ----------
    stat : float
        The statistic in Wald form (``q`` times the F statistic).
    q : int
        Number of parameters that break (1..10).
    trim : float or (float, float)
        The trimming ``pi0`` of a symmetric search range ``[pi0, 1 - pi0]``, or the range
        ``(pi1, pi2)`` itself as fractions of the sample.

    Returns
    -------
    float

    Notes
    -----
    Hansen's (1997) approximation to the limiting distribution of Andrews (1993),
    :math:`\sup_{\pi} \|B_q(\pi) - \pi B_q(1)\|^2 / (\pi(1-\pi))` over the search range:
    :math:`p = 1 - F_{\chi^2_{d}}(b_0 + b_1 x)` with coefficients tabulated for
    :math:`\tau = 0.01, 0.03, \dots, 0.49` and interpolated linearly in between (as R's
    ``strucchange``); at :math:`\tau = 0.5` the statistic is :math:`\chi^2_q`. An
    asymmetric range enters through :math:`\lambda = \pi_2 (1-\pi_1)/(\pi_1 (1-\pi_2))`
    and :math:`\tau = 1/(1+\sqrt\lambda)`.

    Examples
    --------
    >>> round(sup_f_pvalue(8.61, q=1, trim=0.15), 3)
    0.05
    """
    if not 1 <= int(q) <= _HANSEN_SUP.shape[0]:
        raise ParameterError("q", q, f"p-values are tabulated for 1..{_HANSEN_SUP.shape[0]} breaking parameters",
                             hint="Let fewer terms break")
    tau = _tau_of(trim)
    beta = _HANSEN_SUP[int(q) - 1]
    x = float(stat)
    lin = np.maximum(beta[:, 0] + beta[:, 1] * x, 0.0)
    pp = stats.chi2.sf(lin, beta[:, 2])
    if abs(tau - 0.5) < 1e-12:
        return float(stats.chi2.sf(x, q))
    if tau <= 0.01:
        return float(pp[24])
    if tau >= 0.49:
        return float(((0.5 - tau) * pp[0] + (tau - 0.49) * stats.chi2.sf(x, q)) * 100)
    taua = (0.51 - tau) * 50
    t1 = int(math.floor(taua))
    return float((t1 + 1 - taua) * pp[t1 - 1] + (taua - t1) * pp[t1])


def sup_f_critical(q: int, trim: float | tuple[float, float] = 0.15, alpha: float = 0.05) -> float:
    """Critical value of the sup-Wald statistic at level ``alpha`` (inverse of :func:`sup_f_pvalue`).

    Examples
    --------
    >>> round(sup_f_critical(1, 0.15, 0.05), 2), round(sup_f_critical(2, 0.15, 0.05), 2)
    (8.61, 11.56)
    """
    f = lambda x: sup_f_pvalue(x, q, trim) - alpha  # noqa: E731
    hi = 10.0
    while f(hi) > 0:
        hi *= 2
    return float(optimize.brentq(f, 1e-6, hi, xtol=1e-8))


# --------------------------------------------------------------------------- Bai (1997)
def _pargmax_v(x: float, xi: float = 1.0, phi1: float = 1.0, phi2: float = 1.0) -> float:
    """P(argmax V <= x) for Bai's (1997) two-sided process with unequal variances (as strucchange)."""
    phi = xi * (phi2 / phi1) ** 2
    ax = abs(x)
    if x < 0:
        frac = xi / phi
        return float(-math.exp(math.log(ax) / 2 - ax / 8 - math.log(2 * math.pi) / 2)
                     - (phi / xi * (phi + 2 * xi) / (phi + xi))
                     * math.exp(frac * (1 + frac) * ax / 2 + special.log_ndtr(-(0.5 + frac) * math.sqrt(ax)))
                     + math.exp(math.log(ax / 2 - 2 + (phi + 2 * xi) ** 2 / ((phi + xi) * xi))
                                + special.log_ndtr(-math.sqrt(ax) / 2)))
    if x == 0:
        ax = 0.0
    frac = xi ** 2 / phi
    t1 = math.sqrt(frac) * math.exp(math.log(ax) / 2 - frac * ax / 8 - math.log(2 * math.pi) / 2) if ax > 0 else 0.0
    arg = ((2 * phi + xi) ** 2) / ((phi + xi) * phi) - 2 + frac * ax / 2
    t3 = math.exp(math.log(arg) + special.log_ndtr(-math.sqrt(frac) * math.sqrt(ax) / 2)) if arg > 0 else 0.0
    return float(1 + t1 + (xi / phi * (2 * phi + xi) / (phi + xi))
                 * math.exp((phi + xi) * ax / 2 + special.log_ndtr(-(phi + xi / 2) / math.sqrt(phi) * math.sqrt(ax)))
                 - t3)


def break_date_interval(jump: float, *, omega1: float, omega2: float, q1: float = 1.0, q2: float = 1.0,
                        alpha: float = 0.05) -> tuple[float, float] | None:
    r"""Bai's (1997) confidence bounds for a break date, in observations.

    Parameters
    ----------
    jump : float
        The shift at the break (``delta``).
    omega1, omega2 : float
        Per-observation variance of the scores before and after the break (the error
        variance; its long-run version for a HAC-adjusted interval).
    q1, q2 : float
        Per-observation second moment of the breaking regressor (1 for a level shift
        with the gaussian model; the mean working weight for count families).
    alpha : float
        One minus the confidence level.

    Returns
    -------
    (lower, upper) or None
        Bounds ``a <= 0 <= b`` such that the interval for the number of observations
        before the break is ``[k - ceil(b), k - floor(a)]`` (strucchange's rule); ``None``
        when ``P(argmax V <= 0)`` lies outside ``[alpha/2, 1 - alpha/2]``.

    Notes
    -----
    With :math:`\phi_i^2 = \omega_i / q_i`, :math:`\xi = q_2 / q_1`,
    :math:`(\delta^2 q_1 / \phi_1^2)(\hat k - k_0) \Rightarrow \arg\max_s V(s)`, where
    :math:`V` is a two-sided Brownian motion with drift (Bai 1997, Proposition 3 with
    heterogeneous variances); its distribution function is the closed form of Bai (1997,
    p. 557), as in R's ``strucchange::confint.breakpointsfull``.
    """
    if not (np.isfinite(jump) and jump != 0 and omega1 > 0 and omega2 > 0 and q1 > 0 and q2 > 0):
        return None
    a2 = alpha / 2
    phi1, phi2, xi = math.sqrt(omega1 / q1), math.sqrt(omega2 / q2), q2 / q1
    p0 = _pargmax_v(0.0, xi, phi1, phi2)
    if not np.isfinite(p0) or p0 < a2 or p0 > 1 - a2:
        return None
    ub = lb = 0.0
    while _pargmax_v(ub, xi, phi1, phi2) < 1 - a2:
        ub += 1000.0
    while _pargmax_v(lb, xi, phi1, phi2) > a2:
        lb -= 1000.0
    up = optimize.brentq(lambda x: _pargmax_v(x, xi, phi1, phi2) - (1 - a2), 0.0, ub, xtol=1e-10)
    lo = optimize.brentq(lambda x: _pargmax_v(x, xi, phi1, phi2) - a2, lb, 0.0, xtol=1e-10)
    scale = phi1 ** 2 / (jump ** 2 * q1)
    return lo * scale, up * scale


def _lrv(u: np.ndarray, tpos: np.ndarray, lags: int) -> float:
    """Bartlett long-run variance per observation of ``u`` placed on its grid (gaps are zero)."""
    if len(u) == 0:
        return float("nan")
    lo = int(tpos.min())
    g = np.zeros(int(tpos.max()) - lo + 1)
    g[tpos - lo] = u
    s = float(g @ g)
    for j in range(1, min(lags, len(g) - 1) + 1):
        s += 2.0 * (1.0 - j / (lags + 1.0)) * float(g[j:] @ g[:-j])
    return max(s, 1e-300) / len(u)


# --------------------------------------------------------------------------- data and design
@dataclass
class _Prepared:
    y: np.ndarray  # outcome on the fitted rows (logged when log=True)
    X: np.ndarray  # base design on the fitted rows
    names: list[str]
    tpos: np.ndarray  # grid position of each fitted row
    labels: pd.Index  # grid labels (dates or integer labels)
    n_grid: int
    outcome: str
    freq_unit: str
    kind: str
    frame: Any


def _prepare(data: Any, *, outcome: str | None, family: str, log: bool, dow: bool | None, fourier: int,
             holidays: Any, freq: str | None, trend: bool) -> _Prepared:
    if family not in FAMILIES:
        raise ParameterError("family", family, "is not a supported family", accepted=FAMILIES)
    if log and family != "gaussian":
        raise ParameterError("log", log, f"applies to family='gaussian' only; family={family!r} already models "
                             "counts on the log scale", hint="Drop log=True, or use family='gaussian'")
    if not isinstance(fourier, (int, np.integer)) or isinstance(fourier, bool) or fourier < 0:
        raise ParameterError("fourier", fourier, "must be a non-negative integer (number of annual pairs)")
    frame = normalize_data(data, outcome=outcome, control=None, offset=None, freq=freq)
    if dow is None:
        dow = frame.freq.kind == "D"
    elif dow and frame.freq.kind != "D":
        raise ParameterError("dow", dow, f"day-of-week effects need daily data; this series is "
                                         f"{frame.freq.unit}ly", hint="Set dow=False")
    n_grid = len(frame.index)
    d = build_design(frame, event_pos=0, slope=False, dow=bool(dow), fourier=int(fourier), holidays=holidays,
                     excluded_pos=np.array([], dtype=int), family=family)
    keep = [j for j, c in enumerate(d.names) if c != "level" and (trend or c != "trend")]
    y_all = np.asarray(frame.y, dtype=float)
    fit = np.isfinite(y_all)
    y = y_all[fit]
    if len(y) == 0:
        raise DataError(f"the outcome {frame.outcome!r} has no observed period; nothing to date")
    if log:
        if np.any(y <= 0):
            raise DataError(f"log=True needs positive values, but {frame.outcome!r} has {int(np.sum(y <= 0))} "
                            "value(s) <= 0; use a count family (family='negbin' or 'quasipoisson') or mark "
                            "those periods missing")
        y = np.log(y)
    if family in COUNT_FAMILIES:
        if np.any(y < 0):
            raise DataError(f"family={family!r} needs non-negative counts; {frame.outcome!r} has negative values. "
                            "Use family='gaussian'")
        if family in ("poisson", "negbin") and np.any(np.abs(y - np.round(y)) > 1e-8):
            raise DataError(f"family={family!r} needs integer counts; use family='quasipoisson' or 'gaussian'")
    X = d.X[fit][:, keep]
    names = [d.names[j] for j in keep]
    # drop holiday columns that never occur
    nz = [j for j in range(X.shape[1]) if not (names[j].startswith("holiday") and np.all(X[:, j] == 0))]
    X, names = X[:, nz], [names[j] for j in nz]
    if np.ptp(y) == 0:
        raise ModelError(f"the outcome {frame.outcome!r} is constant over the observed periods; there is no break "
                         "to date. Check the indicator or choose another series")
    return _Prepared(y, X, names, np.flatnonzero(fit), frame.index, n_grid, frame.outcome, frame.freq.unit,
                     frame.freq.kind, frame)


def _check_rank(X: np.ndarray, names: list[str]) -> None:
    if X.shape[1] == 0:
        return
    Xs = X / np.maximum(np.abs(X).max(axis=0), 1e-300)
    if np.linalg.matrix_rank(Xs) < X.shape[1]:
        raise ModelError(f"the base design ({', '.join(names)}) is singular on the observed periods; "
                         "drop seasonal terms (dow=False, fewer fourier pairs) or use a longer series")


def _resolve_trim(trim: Any, n: int, q: int, what: str = "trim") -> int:
    """Minimum number of observations in each regime, from a fraction or a count."""
    if isinstance(trim, (bool, np.bool_)) or not isinstance(trim, (int, float, np.integer, np.floating)):
        raise ParameterError(what, trim, "must be a fraction in (0, 0.5) or a number of observations")
    if isinstance(trim, (int, np.integer)):
        h = int(trim)
        if h < 1:
            raise ParameterError(what, trim, "as a count of observations must be >= 1")
    else:
        if not 0 < float(trim) < 0.5:
            raise ParameterError(what, trim, "as a fraction of the sample must lie strictly between 0 and 0.5",
                                 hint="The usual choice is 0.15 (Andrews 1993); use 0.05-0.25")
        h = int(math.floor(float(trim) * n))
    h = max(h, q + 1)
    if 2 * h > n:
        raise DataError(f"{n} observed periods cannot hold two regimes of at least {h} periods each "
                        f"({what}={trim!r}); use a smaller {what} or a longer series")
    return h


def _resolve_lags(cov: str, maxlags: Any, u: np.ndarray, tpos: np.ndarray, n_grid: int) -> int:
    if cov == "iid":
        return 0
    if maxlags is None:
        return nw_plugin_lags(u[:, None], tpos, np.zeros(len(u), dtype=int), n_grid, len(u), max(1, len(u) // 4))
    if isinstance(maxlags, bool) or not isinstance(maxlags, (int, np.integer)) or maxlags < 0:
        raise ParameterError("maxlags", maxlags, "must be a non-negative integer or None (Newey-West 1994 plug-in)")
    return int(maxlags)


def _check_common(cov: str, breaks_in: Any) -> tuple[str, ...]:
    if cov not in COV_CHOICES:
        raise ParameterError("cov", cov, "is not a supported covariance for break tests", accepted=COV_CHOICES)
    bi = (breaks_in,) if isinstance(breaks_in, str) else tuple(breaks_in)
    if bi not in (("level",), ("level", "slope")):
        raise ParameterError("breaks_in", breaks_in, "must name the terms that break",
                             accepted=[("level",), ("level", "slope")])
    return bi


def _label(x: Any) -> Any:
    return format_label(x) if isinstance(x, pd.Timestamp) else (int(x) if isinstance(x, (int, np.integer)) else x)


def _num(x: Any) -> Any:
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


# --------------------------------------------------------------------------- one break: the scan
def _hac_block(G: np.ndarray, lags: int) -> np.ndarray:
    """Bartlett long-run sum of scores G (q, n_grid, m) -> (q, q, m)."""
    S = np.einsum("anm,bnm->abm", G, G)
    for j in range(1, lags + 1):
        w = 1.0 - j / (lags + 1.0)
        C = np.einsum("anm,bnm->abm", G[:, j:], G[:, :-j])
        S += w * (C + C.transpose(1, 0, 2))
    return S


def _break_columns(tpos: np.ndarray, taus: np.ndarray, q: int) -> np.ndarray:
    """Level (and slope) columns for candidate breaks at grid positions ``taus``: (q, n, m)."""
    t = tpos.astype(float)[:, None]
    lvl = (t >= taus[None, :]).astype(float)
    if q == 1:
        return lvl[None]
    return np.stack([lvl, (t - taus[None, :]) * lvl])


def _scan_gaussian(p: _Prepared, ks: np.ndarray, q: int, lags: int, chunk: int = 192) -> dict[str, np.ndarray]:
    X, y, tpos = p.X, p.y, p.tpos
    n, k = X.shape
    XtX_inv = np.linalg.inv(X.T @ X)
    b0 = XtX_inv @ (X.T @ y)
    e0 = y - X @ b0
    rss0 = float(e0 @ e0)
    m = len(ks)
    out = {"rss": np.empty(m), "wald_iid": np.empty(m), "wald_hac": np.full(m, np.nan), "delta": np.empty((m, q))}
    lo = int(tpos.min())
    ng = int(tpos.max()) - lo + 1
    for s in range(0, m, chunk):
        kk = ks[s:s + chunk]
        D = _break_columns(tpos, tpos[kk], q)  # (q, n, c)
        Dt = D - np.einsum("np,apc->anc", X, XtX_inv @ np.einsum("np,anc->apc", X, D))
        M = np.einsum("anc,bnc->cab", Dt, Dt)
        c = np.einsum("anc,n->ca", Dt, e0)
        delta = np.linalg.solve(M, c[..., None])[..., 0]  # (c, q)
        gain = np.einsum("ca,ca->c", c, delta)
        rss1 = rss0 - gain
        sl = slice(s, s + len(kk))
        out["rss"][sl] = rss1
        out["wald_iid"][sl] = gain / (rss1 / (n - k - q))
        out["delta"][sl] = delta
        if True:  # HAC (lags = 0: heteroskedasticity-robust)
            u = e0[:, None] - np.einsum("anc,ca->nc", Dt, delta)
            G = np.zeros((q, ng, len(kk)))
            G[:, tpos - lo] = Dt * u[None]
            S = _hac_block(G, lags)  # (q, q, c)
            Minv = np.linalg.inv(M)  # (c, q, q)
            V = Minv @ S.transpose(2, 0, 1) @ Minv
            out["wald_hac"][sl] = np.einsum("ca,ca->c", delta, np.linalg.solve(V, delta[..., None])[..., 0])
    out["rss0"] = np.array(rss0)
    out["e0"] = e0
    return out


def _loglike(y: np.ndarray, mu: np.ndarray, family: str, alpha: float) -> float:
    if family == "negbin":
        r = 1.0 / alpha
        return float(np.sum(special.gammaln(y + r) - special.gammaln(r) - special.gammaln(y + 1)
                            + r * np.log(r / (r + mu)) + y * np.log(mu / (r + mu))))
    return float(np.sum(special.xlogy(y, mu) - mu - special.gammaln(y + 1)))


def _irls(X: np.ndarray, y: np.ndarray, alpha: float, beta: np.ndarray, maxiter: int = 100, tol: float = 1e-10):
    eta = X @ beta
    for _ in range(maxiter):
        mu = np.exp(np.clip(eta, -700, 700))
        w = mu / (1.0 + alpha * mu)
        z = eta + (y - mu) / mu
        sw = np.sqrt(w)
        new = np.linalg.lstsq(X * sw[:, None], z * sw, rcond=None)[0]
        step = np.max(np.abs(new - beta))
        beta = new
        eta = X @ beta
        if step < tol * (1.0 + np.max(np.abs(beta))):
            break
    return beta, np.exp(np.clip(eta, -700, 700))


def _scan_counts(p: _Prepared, ks: np.ndarray, q: int, lags: int, family: str) -> dict[str, Any]:
    X, y, tpos = p.X, p.y, p.tpos
    n, k = X.shape
    st = fit_model(X, y, np.zeros(n), family)
    alpha = float(st.alpha) if family == "negbin" else 0.0
    phi = float(st.pearson_chi2 / (n - k)) if family == "quasipoisson" else 1.0
    ll0 = _loglike(y, st.mu, family, alpha)
    m = len(ks)
    out = {"lr": np.empty(m), "wald_hac": np.full(m, np.nan), "delta": np.empty((m, q)),
           "alpha": alpha, "phi": phi, "mu0": st.mu, "params0": st.params, "beta": [None] * m}
    D = _break_columns(tpos, tpos[ks], q)
    start = np.concatenate([st.params, np.zeros(q)])
    lo = int(tpos.min())
    ng = int(tpos.max()) - lo + 1
    for i in range(m):
        Xf = np.column_stack([X, D[:, :, i].T])
        beta, mu = _irls(Xf, y, alpha, start.copy())
        out["lr"][i] = 2.0 * (_loglike(y, mu, family, alpha) - ll0) / phi
        out["delta"][i] = beta[k:]
        out["beta"][i] = beta
        w = mu / (1.0 + alpha * mu)
        u = (y - mu) / (1.0 + alpha * mu)
        Hinv = np.linalg.inv((Xf * w[:, None]).T @ Xf)
        C = Hinv[k:]
        psi = (Xf @ C.T) * u[:, None]  # (n, q)
        G = np.zeros((q, ng, 1))
        G[:, tpos - lo, 0] = psi.T
        V = _hac_block(G, lags)[:, :, 0]
        d = beta[k:]
        out["wald_hac"][i] = float(d @ np.linalg.solve(V, d))
    out["ll0"] = ll0
    return out


class BreakScan:
    r"""Sup-Wald (Quandt likelihood-ratio) scan for one break, with Bai's interval for its date.

    Parameters
    ----------
    data : pandas.DataFrame or pandas.Series
        The series on a dated (or integer) index, as for :class:`raidstudy.ITS`. Missing
        periods (absent rows, NaN) are left out.
    outcome : str, optional
        Outcome column (optional for a Series or a one-column frame).
    family : {"gaussian", "poisson", "quasipoisson", "negbin"}
        ``gaussian`` is least squares (on counts, or on logs with ``log=True``); the count
        families use their log-link likelihood.
    log : bool
        Model ``log(y)`` (gaussian only).
    dow : bool, optional
        Day-of-week terms (default: True for daily data).
    fourier : int
        Annual Fourier pairs.
    holidays : list or dict of dates, optional
        Holiday indicators, as for ITS.
    trend : bool
        Include the linear trend in the base design (default True).
    trim : float or int
        Trimming: each regime holds at least ``floor(trim * n)`` observed periods
        (``n`` observed periods); an integer gives the count itself. Default 0.15.
    breaks_in : ("level",) or ("level", "slope")
        The terms that break: the level (a shift of the mean, on the link scale), or level
        and slope (the ITS ``level`` and ``slope`` columns at the candidate date).
    search : (start, end), optional
        Restrict the candidate dates further (dates or labels, inclusive); the trimming
        still applies.
    cov : {"hac", "iid"}
        How the statistic is studentised (see Notes). Default ``"hac"``.
    maxlags : int, optional
        Bartlett lags of the HAC variance (default: Newey-West 1994 plug-in on the
        residuals of the model without break, never below the rule of thumb).
    freq : str, optional
        Frequency of the index, when it cannot be inferred.

    Notes
    -----
    For every candidate date :math:`\tau` (first period of the new regime) the model
    :math:`g(\mu_t) = x_t'\beta + z_t(\tau)'\delta` is fitted, with :math:`x_t` the base
    design (``const``, ``trend``, seasonal terms) and :math:`z_t(\tau)` the level
    :math:`1[t \ge \tau]` (and slope :math:`(t-\tau) 1[t \ge \tau]`) columns, so
    :math:`q = 1` or 2 parameters break.

    *Gaussian.* By Frisch-Waugh, with :math:`\tilde Z = M_X Z(\tau)` and the residuals
    :math:`e` of the model without break, :math:`\hat\delta = (\tilde Z'\tilde Z)^{-1}\tilde Z'e`
    and :math:`RSS(\tau) = e'e - e'\tilde Z\hat\delta`; one projection per date, all dates
    at once (no refits). ``cov="iid"``: :math:`W = (e'e - RSS)/(RSS/(n-p-q))` (Andrews'
    :math:`q F`, R's ``strucchange::Fstats``). ``cov="hac"``: :math:`W = \hat\delta' V^{-1}
    \hat\delta`, :math:`V = (\tilde Z'\tilde Z)^{-1} \hat\Omega (\tilde Z'\tilde Z)^{-1}`,
    :math:`\hat\Omega` the Bartlett long-run variance of :math:`\tilde z_t \hat u_t` on the
    regular grid (missing periods contribute zero).

    *Count families.* Each date is refitted by IRLS, warm-started at the fit without
    break (NB2's :math:`\alpha` held at that fit's estimate: :math:`\beta` and
    :math:`\alpha` are orthogonal in NB2, so this changes the statistics by
    :math:`o_p(1)`). The break date is the maximum-likelihood date (largest likelihood
    ratio, :math:`LR = 2(\ell_1 - \ell_0)`, divided by the Pearson dispersion for
    quasi-Poisson). The test statistic is, with ``cov="hac"``, the Wald statistic with the
    GLM sandwich :math:`H^{-1}\hat\Omega H^{-1}` (Bartlett HAC meat), because the LR needs
    the information-matrix equality, which over-dispersion and autocorrelated counts
    break (over-dispersion alone inflates the Poisson LR by the dispersion factor); ``cov="iid"``
    gives the LR itself.

    *Reference distribution.* Under no break, :math:`\sup_\tau W` converges to
    :math:`\sup_{\pi} \|B_q(\pi)-\pi B_q(1)\|^2/(\pi(1-\pi))` over the search range
    (Andrews 1993); the p-value is Hansen's (1997) approximation (:func:`sup_f_pvalue`).

    *Date interval* (Bai 1997): with the shift :math:`\delta` at the estimated date
    (the ``level`` coefficient; the slope column is zero at the break, so it does not
    move the date locally), the per-observation regressor moment :math:`Q_i` (1 for
    gaussian; the mean working weight :math:`\mu/(1+\alpha\mu)` for counts) and score
    variance :math:`\Omega_i` on each side (``iid``: mean squared residual or score;
    ``hac``: Bartlett long-run variance within the regime),
    :func:`break_date_interval` gives the bounds; the interval is
    ``[k - ceil(b), k - floor(a)]`` observations before the break, as in R's
    ``strucchange``. With ``cov="iid"`` and a constant-only design this is
    ``confint(breakpoints(y ~ 1), breaks = 1)``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from raidstudy.models.breaks import BreakScan
    >>> rng = np.random.default_rng(0)
    >>> y = pd.Series(rng.normal(10 - 3 * (np.arange(300) >= 180), 1.0),
    ...               index=pd.date_range("2020-01-01", periods=300, freq="D"))
    >>> res = BreakScan(y, dow=False).fit()
    >>> res.date, res.p_value < 0.01, res.contains("2020-06-29")
    ('2020-06-29', True, True)
    """

    def __init__(self, data: Any, *, outcome: str | None = None, family: str = "gaussian", log: bool = False,
                 dow: bool | None = None, fourier: int = 0, holidays: Any = None, trend: bool = True,
                 trim: float | int = 0.15, breaks_in: Sequence[str] | str = ("level",),
                 search: tuple[Any, Any] | None = None, cov: str = "hac", maxlags: int | None = None,
                 freq: str | None = None):
        self.breaks_in = _check_common(cov, breaks_in)
        self.q = len(self.breaks_in)
        if "slope" in self.breaks_in and not trend:
            raise ParameterError("breaks_in", breaks_in, "a slope break needs the trend in the base design",
                                 hint="Set trend=True or breaks_in=('level',)")
        self.family, self.log, self.cov, self.maxlags = family, bool(log), cov, maxlags
        self.trim_input = trim
        self.prep = _prepare(data, outcome=outcome, family=family, log=log, dow=dow, fourier=fourier,
                             holidays=holidays, freq=freq, trend=trend)
        p = self.prep
        n, k = p.X.shape
        if n < k + 2 * (self.q + 1) + 2:
            raise DataError(f"{n} observed period(s) for {k} base terms and a break in {self.q} term(s); "
                            "the scan needs more periods than that. Use a longer series or fewer seasonal terms")
        _check_rank(p.X, p.names)
        self.h = _resolve_trim(trim, n, self.q)
        ks = np.arange(self.h, n - self.h + 1)
        if search is not None:
            ks = self._restrict(ks, search)
        self.ks = ks
        self.pi_range = (ks[0] / n, ks[-1] / n)

    def _restrict(self, ks: np.ndarray, search: Any) -> np.ndarray:
        p = self.prep
        if not (isinstance(search, (tuple, list)) and len(search) == 2):
            raise ParameterError("search", search, "must be a (start, end) pair of dates")
        lo_hi = []
        for v in search:
            pos = resolve_dates(p.frame, [v], "search") if v is not None else None
            if v is not None and len(pos) == 0:
                raise ParameterError("search", search, f"{v!r} lies outside the data "
                                     f"({_label(p.labels[0])} to {_label(p.labels[-1])})",
                                     hint="Choose a search range inside the series")
            lo_hi.append(None if pos is None else int(pos[0]))
        a = 0 if lo_hi[0] is None else lo_hi[0]
        b = p.n_grid - 1 if lo_hi[1] is None else lo_hi[1]
        if b < a:
            raise ParameterError("search", search, "ends before it starts", hint="Pass (start, end) in order")
        sel = ks[(p.tpos[ks] >= a) & (p.tpos[ks] <= b)]
        if len(sel) == 0:
            first, last = _label(p.labels[p.tpos[ks[0]]]), _label(p.labels[p.tpos[ks[-1]]])
            raise ParameterError("search", search, f"holds no admissible date: with trim={self.trim_input!r} "
                                 f"({self.h} periods per regime) breaks can be dated from {first} to {last}",
                                 hint="Widen the search range or lower trim")
        return sel

    def fit(self, *, alpha: float = 0.05) -> "BreakScanResults":
        """Scan every admissible date; returns :class:`BreakScanResults`."""
        if not 0 < alpha < 1:
            raise ParameterError("alpha", alpha, "must lie in (0, 1)")
        p, q, ks = self.prep, self.q, self.ks
        n, k = p.X.shape
        if self.family == "gaussian":
            b0 = np.linalg.lstsq(p.X, p.y, rcond=None)[0]
            e0 = p.y - p.X @ b0
            lags = _resolve_lags(self.cov, self.maxlags, e0, p.tpos, p.n_grid)
            sc = _scan_gaussian(p, ks, q, max(lags, 0))
            stat = sc["wald_hac"] if self.cov == "hac" else sc["wald_iid"]
            crit_date = -sc["rss"]  # least squares date
            lr = sc["wald_iid"]
        else:
            st0 = fit_model(p.X, p.y, np.zeros(n), self.family)
            alpha_nb = float(st0.alpha) if self.family == "negbin" else 0.0
            u0 = (p.y - st0.mu) / (1.0 + alpha_nb * st0.mu)
            lags = _resolve_lags(self.cov, self.maxlags, u0, p.tpos, p.n_grid)
            sc = _scan_counts(p, ks, q, max(lags, 0), self.family)
            stat = sc["wald_hac"] if self.cov == "hac" else sc["lr"]
            crit_date = sc["lr"]
            lr = sc["lr"]
        j = int(np.argmax(crit_date))
        jsup = int(np.argmax(stat))
        khat = int(ks[j])
        sup = float(stat[jsup])
        pval = sup_f_pvalue(sup, q, self.pi_range)
        delta = sc["delta"][j]
        # Bai (1997) interval at the estimated date
        tb = p.tpos[khat]
        D = _break_columns(p.tpos, np.array([tb]), q)[:, :, 0].T
        Xf = np.column_stack([p.X, D])
        if self.family == "gaussian":
            beta = np.linalg.lstsq(Xf, p.y, rcond=None)[0]
            mu = Xf @ beta
            u = p.y - mu
            w = np.ones_like(u)
        else:
            beta = sc["beta"][j]
            mu = np.exp(Xf @ beta)
            a_nb = sc["alpha"]
            u = (p.y - mu) / (1.0 + a_nb * mu)
            w = mu / (1.0 + a_nb * mu)
        seg1, seg2 = slice(0, khat), slice(khat, n)
        if self.cov == "hac":
            om1, om2 = _lrv(u[seg1], p.tpos[seg1], lags), _lrv(u[seg2], p.tpos[seg2], lags)
        else:
            om1, om2 = float(np.mean(u[seg1] ** 2)), float(np.mean(u[seg2] ** 2))
        jump = float(delta[0])
        b = break_date_interval(jump, omega1=om1, omega2=om2, q1=float(np.mean(w[seg1])),
                                q2=float(np.mean(w[seg2])), alpha=alpha)
        if b is None:
            ci_k = None
        else:
            ci_k = (max(1, khat - int(math.ceil(b[1]))), min(n - 1, khat - int(math.floor(b[0]))))
        scan = pd.DataFrame({
            "date": [_label(p.labels[t]) for t in p.tpos[ks]],
            "breakpoint": ks,
            "statistic": stat,
            "lr" if self.family != "gaussian" else "wald_iid": lr,
        })
        for a_i, term in enumerate(self.breaks_in):
            scan[term] = sc["delta"][:, a_i]
        return BreakScanResults(
            model=self, scan=scan, sup_wald=sup, sup_date=_label(p.labels[p.tpos[ks[jsup]]]), p_value=pval,
            critical_value=sup_f_critical(q, self.pi_range, alpha), alpha=alpha, breakpoint=khat,
            date=_label(p.labels[tb]), last_before=_label(p.labels[p.tpos[khat - 1]]),
            ci_breakpoints=ci_k,
            date_ci=None if ci_k is None else (_label(p.labels[p.tpos[ci_k[0]]]), _label(p.labels[p.tpos[ci_k[1]]])),
            shift=dict(zip(self.breaks_in, map(float, delta))), lags=lags if self.cov == "hac" else None,
            omega=(om1, om2), n_obs=n, trim_obs=self.h,
        )


@dataclass
class BreakScanResults:
    """Result of :meth:`BreakScan.fit`.

    Attributes
    ----------
    sup_wald : float
        The largest statistic over the admissible dates (``sup_date`` where it is reached).
    p_value, critical_value : float
        Hansen (1997) p-value and the ``alpha`` critical value of the sup statistic.
    date : date label
        Estimated break date (least squares / maximum likelihood), the first period of the
        new regime; ``last_before`` is the period before it (strucchange's break date).
    breakpoint : int
        Observed periods before the break (strucchange's breakpoint number).
    date_ci : (label, label) or None
        Bai's (1997) ``1 - alpha`` interval for ``date``.
    scan : pandas.DataFrame
        One row per admissible date: ``date``, ``breakpoint``, ``statistic`` and the shift
        estimates.
    """

    model: BreakScan
    scan: pd.DataFrame
    sup_wald: float
    sup_date: Any
    p_value: float
    critical_value: float
    alpha: float
    breakpoint: int
    date: Any
    last_before: Any
    ci_breakpoints: tuple[int, int] | None
    date_ci: tuple[Any, Any] | None
    shift: dict[str, float]
    lags: int | None
    omega: tuple[float, float]
    n_obs: int
    trim_obs: int

    def contains(self, date: Any) -> bool:
        """Whether the period holding ``date`` lies in the date interval (as the first period of the new regime)."""
        if self.ci_breakpoints is None:
            return False
        p = self.model.prep
        pos = resolve_dates(p.frame, [date], "date")
        if len(pos) == 0:
            raise ParameterError("date", date, "lies outside the data",
                                 hint=f"The series runs from {_label(p.labels[0])} to {_label(p.labels[-1])}")
        lo, hi = p.tpos[self.ci_breakpoints[0]], p.tpos[self.ci_breakpoints[1]]
        return bool(lo <= pos[0] <= hi)

    def to_dict(self) -> dict[str, Any]:
        m = self.model
        return {
            "model": {"family": m.family, "log": m.log, "breaks_in": list(m.breaks_in), "base_terms": m.prep.names,
                      "cov": m.cov, "hac_lags": self.lags, "trim": m.trim_input, "trim_obs": self.trim_obs,
                      "n_obs": self.n_obs, "search_from": self.scan["date"].iloc[0],
                      "search_to": self.scan["date"].iloc[-1]},
            "sup_wald": _num(self.sup_wald), "sup_date": self.sup_date, "p_value": _num(self.p_value),
            "critical_value": _num(self.critical_value), "alpha": self.alpha,
            "date": self.date, "last_before": self.last_before, "breakpoint": self.breakpoint,
            "date_ci": None if self.date_ci is None else list(self.date_ci),
            "breakpoint_ci": None if self.ci_breakpoints is None else list(self.ci_breakpoints),
            "shift": {k: _num(v) for k, v in self.shift.items()},
        }

    def summary(self) -> str:
        m = self.model
        stat = ("Wald, Bartlett HAC with %d lags" % self.lags) if m.cov == "hac" else (
            "F (iid errors)" if m.family == "gaussian" else "likelihood ratio")
        scale = "log " if m.log else ""
        ci = "not computable" if self.date_ci is None else f"{self.date_ci[0]} to {self.date_ci[1]}"
        lines = [
            f"Sup-Wald scan for one break in {' and '.join(m.breaks_in)} ({m.family}, {scale}{m.prep.outcome})",
            f"  base terms: {', '.join(m.prep.names)}; {self.n_obs} observed periods, "
            f"{len(self.scan)} admissible dates ({self.scan['date'].iloc[0]} to {self.scan['date'].iloc[-1]}, "
            f"at least {self.trim_obs} periods per regime)",
            f"  sup statistic ({stat}): {self.sup_wald:.3f} at {self.sup_date}; "
            f"{100 * (1 - self.alpha):g}% critical value {self.critical_value:.2f}; p = {self.p_value:.3g} "
            "(Andrews 1993 limit, Hansen 1997 approximation)",
            f"  break date: {self.date} (first period of the new regime); "
            f"{100 * (1 - self.alpha):g}% interval (Bai 1997): {ci}",
            "  shift: " + ", ".join(f"{k} {v:+.4g}" for k, v in self.shift.items()),
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


# --------------------------------------------------------------------------- several breaks: Bai-Perron
class _SegmentSSR:
    """Sums of squared residuals of a regression of ``r`` on ``Z`` (q <= 2 columns) over any segment [i, j)."""

    def __init__(self, Z: np.ndarray, r: np.ndarray):
        self.q = Z.shape[1]
        z0 = np.zeros((1,))
        self.R2 = np.concatenate([z0, np.cumsum(r * r)])
        self.ZZ = [[np.concatenate([z0, np.cumsum(Z[:, a] * Z[:, b])]) for b in range(self.q)] for a in range(self.q)]
        self.ZR = [np.concatenate([z0, np.cumsum(Z[:, a] * r)]) for a in range(self.q)]

    def col(self, i: np.ndarray, j: int) -> np.ndarray:
        """SSR of the segments [i, j) for an array of starts ``i``."""
        rr = self.R2[j] - self.R2[i]
        if self.q == 1:
            a = self.ZZ[0][0][j] - self.ZZ[0][0][i]
            b = self.ZR[0][j] - self.ZR[0][i]
            return rr - b * b / a
        a11 = self.ZZ[0][0][j] - self.ZZ[0][0][i]
        a12 = self.ZZ[0][1][j] - self.ZZ[0][1][i]
        a22 = self.ZZ[1][1][j] - self.ZZ[1][1][i]
        b1 = self.ZR[0][j] - self.ZR[0][i]
        b2 = self.ZR[1][j] - self.ZR[1][i]
        det = a11 * a22 - a12 * a12
        with np.errstate(divide="ignore", invalid="ignore"):
            quad = (a22 * b1 * b1 - 2 * a12 * b1 * b2 + a11 * b2 * b2) / det
        return rr - quad

    def one(self, i: int, j: int) -> float:
        return float(self.col(np.array([i]), j)[0])


def _dp(seg: _SegmentSSR, n: int, h: int, m: int) -> tuple[list[int], float]:
    """Global minimiser of the total SSR with m breaks and segments of >= h observations (Bai-Perron 2003)."""
    INF = np.inf
    cost = np.full((m + 1, n + 1), INF)
    arg = np.zeros((m + 1, n + 1), dtype=int)
    idx = np.arange(n + 1)
    for j in range(h, n + 1):
        col = seg.col(idx[:j - h + 1], j) if j - h + 1 > 0 else np.empty(0)
        cost[0, j] = col[0]
        for l in range(1, m + 1):
            lo = l * h
            hi = j - h
            if hi < lo:
                break
            v = cost[l - 1, lo:hi + 1] + col[lo:hi + 1]
            a = int(np.argmin(v))
            cost[l, j] = v[a]
            arg[l, j] = lo + a
    bps: list[int] = []
    j = n
    for l in range(m, 0, -1):
        j = int(arg[l, j])
        bps.append(j)
    return sorted(bps), float(cost[m, n])


class BaiPerron:
    r"""Several breaks in level (or level and slope) by Bai and Perron's (1998, 2003) method.

    Parameters
    ----------
    data, outcome, log, dow, fourier, holidays, trend, freq
        As for :class:`BreakScan` (gaussian model, on counts or on logs with ``log=True``).
    breaks_in : ("level",) or ("level", "slope")
        ``("level",)``: each regime has its own intercept, the trend and seasonal terms are
        common (partial structural change). ``("level", "slope")``: each regime has its
        own intercept and trend (segmented trend with jumps), the seasonal terms common.
    max_breaks : int
        Largest number of breaks considered (default 5).
    trim : float or int
        Minimum regime length, as a fraction of the observed periods or as a count
        (Bai and Perron's ``h``; default 0.15).
    cov : {"hac", "iid"}
        Variance of the sequential tests and the date intervals (see Notes).
    maxlags : int, optional
        Bartlett lags (default: Newey-West 1994 plug-in on the residuals of the model
        without break).
    max_iter : int
        Iterations of the partial-change procedure.

    Notes
    -----
    *Model.* :math:`y_t = w_t'\beta + z_t'\delta_j + u_t` for :math:`t` in regime
    :math:`j = 1..m+1`, :math:`z_t = 1` (level) or :math:`(1, t)` (level and slope) and
    :math:`w_t` the remaining base terms. Without common terms (``trend=False``, no
    seasonal terms, level only) this is the pure structural-change model and the
    dynamic programme gives the global least-squares partition exactly (the numbers of R's
    ``strucchange::breakpoints``). With common terms it is the partial model, estimated by
    Bai and Perron's (2003, sec. 3) iterative procedure: :math:`\beta` from the fit
    without breaks, the dynamic programme over the segment sums of squared residuals of
    :math:`y - w'\hat\beta` (segment regressions on :math:`z`, O(1) each from cumulative
    sums), :math:`\beta` refitted given the breaks, until the breaks repeat.

    *Number of breaks.* BIC: :math:`n \log(RSS_m/n) + n(1 + \log 2\pi) + d_m \log n`,
    :math:`d_m = q(m+1) + \dim w + m + 1` (as ``strucchange``). Sequential:
    :math:`\sup F(l+1|l) = \max_i \{S_i - \min_\tau S_i(\tau)\}/\hat\sigma^2` over the
    regimes :math:`i` of the :math:`l`-break partition, splits leaving :math:`h`
    observations on each side; :math:`\hat\sigma^2` is the residual variance of the
    split model with ``cov="iid"`` (:math:`RSS/(n - d)`), and its Bartlett long-run
    variance with ``cov="hac"`` (the F statistic rescaled by the long-run variance: the
    Wald statistic for a shift in the mean under autocorrelated errors). Its p-value is
    :math:`1 - \prod_i (1 - p_i)`, :math:`p_i` Hansen's (1997) p-value for :math:`q`
    parameters and trimming :math:`h / n_i` in regime :math:`i` (the regimes are
    asymptotically independent, Bai and Perron 1998, Proposition 9). Breaks are added while
    the test rejects at ``alpha``.

    *Intervals.* Bai (1997) / Bai and Perron (1998) for each break of a partition, with
    the shift at the break (level: difference of the intercepts; level and slope: the jump
    of the two regimes' lines at the break date) and the error variance of each adjacent
    regime (``iid``) or its long-run variance (``hac``); see :func:`break_date_interval`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from raidstudy.models.breaks import BaiPerron
    >>> rng = np.random.default_rng(1)
    >>> mu = 10.0 - 3 * (np.arange(240) >= 80) + 4 * (np.arange(240) >= 160)
    >>> y = pd.Series(rng.normal(mu, 1.0), index=pd.RangeIndex(240))
    >>> res = BaiPerron(y, trend=False, max_breaks=3, cov="iid").fit()
    >>> res.n_breaks_sequential, res.n_breaks_bic, res.breakpoints()
    (2, 2, [80, 160])
    """

    def __init__(self, data: Any, *, outcome: str | None = None, family: str = "gaussian", log: bool = False,
                 dow: bool | None = None, fourier: int = 0, holidays: Any = None, trend: bool = True,
                 breaks_in: Sequence[str] | str = ("level",), max_breaks: int = 5, trim: float | int = 0.15,
                 cov: str = "hac", maxlags: int | None = None, freq: str | None = None, max_iter: int = 20):
        if family != "gaussian":
            raise ParameterError("family", family, "Bai-Perron dating is least squares (gaussian) only",
                                 accepted=["gaussian"],
                                 hint="Date count series on the log scale (log=True), or use BreakScan for "
                                      "one break with a count family")
        self.breaks_in = _check_common(cov, breaks_in)
        self.q = len(self.breaks_in)
        if "slope" in self.breaks_in and not trend:
            raise ParameterError("breaks_in", breaks_in, "a slope break needs trend=True")
        if isinstance(max_breaks, bool) or not isinstance(max_breaks, (int, np.integer)) or max_breaks < 1:
            raise ParameterError("max_breaks", max_breaks, "must be a positive integer")
        self.log, self.cov, self.maxlags, self.max_iter = bool(log), cov, maxlags, int(max_iter)
        self.family = "gaussian"
        self.trim_input = trim
        self.prep = p = _prepare(data, outcome=outcome, family="gaussian", log=log, dow=dow, fourier=fourier,
                                 holidays=holidays, freq=freq, trend=trend)
        n, k = p.X.shape
        _check_rank(p.X, p.names)
        zc = ["const"] + (["trend"] if self.q == 2 else [])
        self.z_names = zc
        zi = [p.names.index(c) for c in zc]
        wi = [j for j in range(k) if j not in zi]
        self.w_names = [p.names[j] for j in wi]
        self.W = p.X[:, wi]
        tt = p.tpos.astype(float)
        self.t_center, self.t_scale = float(tt.mean()), float(max(tt.std(), 1.0))
        self.Z = np.ones((n, 1)) if self.q == 1 else np.column_stack([np.ones(n), (tt - self.t_center) / self.t_scale])
        self.h = _resolve_trim(trim, n, self.q + 1)
        mb = n // self.h - 1
        if mb < 1:
            raise DataError(f"{n} observed periods with regimes of at least {self.h} periods leave no room for a "
                            f"break; lower trim (now {trim!r}) or use a longer series")
        if max_breaks > mb:
            raise ParameterError("max_breaks", max_breaks,
                                 f"is more than {n} observed periods can hold with regimes of at least {self.h} "
                                 f"periods (at most {mb})", hint=f"Use max_breaks <= {mb} or lower trim")
        self.max_breaks = int(max_breaks)

    # -------------------------------------------------------------- fitting pieces
    def _design(self, bps: list[int]) -> np.ndarray:
        n = len(self.prep.y)
        edges = [0, *bps, n]
        blocks = []
        for a, b in zip(edges[:-1], edges[1:]):
            Zs = np.zeros_like(self.Z)
            Zs[a:b] = self.Z[a:b]
            blocks.append(Zs)
        return np.column_stack([self.W, *blocks])

    def _ols(self, bps: list[int]) -> tuple[np.ndarray, np.ndarray]:
        X = self._design(bps)
        beta = np.linalg.lstsq(X, self.prep.y, rcond=None)[0]
        return beta, self.prep.y - X @ beta

    def _partition(self, m: int) -> tuple[list[int], np.ndarray, np.ndarray]:
        y = self.prep.y
        n = len(y)
        pw = self.W.shape[1]
        if pw == 0:
            bps, _ = _dp(_SegmentSSR(self.Z, y), n, self.h, m)
            beta, u = self._ols(bps)
            return bps, beta, u
        beta, _ = self._ols([])
        prev: list[int] | None = None
        for _ in range(self.max_iter):
            r = y - self.W @ beta[:pw]
            bps, _ = _dp(_SegmentSSR(self.Z, r), n, self.h, m)
            beta, u = self._ols(bps)
            if bps == prev:
                break
            prev = bps
        return bps, beta, u

    def _best_split(self, u_common: np.ndarray, bps: list[int]) -> tuple[float, int, list[float], list[int]]:
        """Largest SSR reduction from one more break inside a regime of the partition ``bps``."""
        n = len(u_common)
        seg = _SegmentSSR(self.Z, u_common)
        edges = [0, *bps, n]
        best, where, gains, lengths = -np.inf, -1, [], []
        for a, b in zip(edges[:-1], edges[1:]):
            lengths.append(b - a)
            if b - a < 2 * self.h:
                gains.append(np.nan)
                continue
            full = seg.one(a, b)
            splits = np.arange(a + self.h, b - self.h + 1)
            left = seg.col(np.full(len(splits), a), splits)
            right = seg.col(splits, b)
            tot = left + right
            s = int(np.argmin(tot))
            g = full - float(tot[s])
            gains.append(g)
            if g > best:
                best, where = g, int(splits[s])
        return best, where, gains, lengths

    def fit(self, *, alpha: float = 0.05) -> "BaiPerronResults":
        """Partitions for 0..max_breaks breaks, the sequential tests, BIC and the date intervals."""
        if not 0 < alpha < 1:
            raise ParameterError("alpha", alpha, "must lie in (0, 1)")
        p = self.prep
        y, n = p.y, len(p.y)
        pw = self.W.shape[1]
        parts: dict[int, dict[str, Any]] = {}
        _, u0 = self._ols([])
        lags = _resolve_lags(self.cov, self.maxlags, u0, p.tpos, p.n_grid)
        for m in range(0, self.max_breaks + 1):
            if m == 0:
                beta, u = self._ols([])
                bps: list[int] = []
            else:
                bps, beta, u = self._partition(m)
            rss = float(u @ u)
            d = self.q * (m + 1) + pw + m + 1
            ll = -0.5 * n * (math.log(2 * math.pi) + math.log(rss / n) + 1)
            parts[m] = {"breakpoints": bps, "beta": beta, "resid": u, "rss": rss, "loglike": ll,
                        "bic": -2 * ll + d * math.log(n), "df": d}
        # sequential tests
        seq_rows = []
        for l in range(0, self.max_breaks):
            P = parts[l]
            uc = y - self.W @ P["beta"][:pw] if pw else y
            gain, where, gains, lengths = self._best_split(uc, P["breakpoints"])
            if where < 0:
                seq_rows.append({"l": l, "statistic": np.nan, "p_value": np.nan, "critical_value": np.nan,
                                 "at": None, "reject": False})
                continue
            bps1 = sorted([*P["breakpoints"], where])
            X1 = self._design(bps1)
            # the split model: common terms held at the l-break estimate, as in the search
            u1 = uc - X1[:, pw:] @ np.linalg.lstsq(X1[:, pw:], uc, rcond=None)[0]
            df1 = self.q * (l + 2) + pw
            if self.cov == "hac":
                s2 = _lrv(u1, p.tpos, lags)
            else:
                s2 = float(u1 @ u1) / (n - df1)
            stat = gain / s2
            etas = [self.h / L for L, g in zip(lengths, gains) if np.isfinite(g)]
            pv = 1.0 - float(np.prod([1.0 - sup_f_pvalue(stat, self.q, min(max(e, 1e-3), 0.5)) for e in etas]))
            crit = float(optimize.brentq(
                lambda x: 1.0 - np.prod([1.0 - sup_f_pvalue(x, self.q, min(max(e, 1e-3), 0.5)) for e in etas])
                - alpha, 1e-6, 1e3))
            seq_rows.append({"l": l, "statistic": stat, "p_value": pv, "critical_value": crit,
                             "at": _label(p.labels[p.tpos[where]]), "reject": bool(pv < alpha)})
        seq = pd.DataFrame(seq_rows)
        n_seq = 0
        for r in seq_rows:
            if r["reject"] and r["l"] == n_seq:
                n_seq += 1
            else:
                break
        bic = pd.DataFrame({"breaks": list(parts), "rss": [parts[m]["rss"] for m in parts],
                            "loglike": [parts[m]["loglike"] for m in parts], "bic": [parts[m]["bic"] for m in parts],
                            "dates": [[_label(p.labels[p.tpos[b]]) for b in parts[m]["breakpoints"]] for m in parts]})
        n_bic = int(bic["breaks"].iloc[int(np.argmin(bic["bic"].to_numpy()))])
        return BaiPerronResults(model=self, partitions=parts, sequential=seq, bic_table=bic, n_breaks_sequential=n_seq,
                                n_breaks_bic=n_bic, alpha=alpha, lags=lags if self.cov == "hac" else None)

    def _intervals(self, part: dict[str, Any], alpha: float, lags: int) -> pd.DataFrame:
        p = self.prep
        n = len(p.y)
        pw = self.W.shape[1]
        bps = part["breakpoints"]
        beta, u = part["beta"], part["resid"]
        edges = [0, *bps, n]
        coefs = beta[pw:].reshape(len(edges) - 1, self.q)
        rows = []
        for i, kb in enumerate(bps):
            s1, s2 = slice(edges[i], kb), slice(kb, edges[i + 2])
            if self.q == 1:
                jump = float(coefs[i + 1, 0] - coefs[i, 0])
            else:
                zb = (p.tpos[kb] - self.t_center) / self.t_scale
                jump = float((coefs[i + 1, 0] + coefs[i + 1, 1] * zb) - (coefs[i, 0] + coefs[i, 1] * zb))
            if self.cov == "hac":
                o1, o2 = _lrv(u[s1], p.tpos[s1], lags), _lrv(u[s2], p.tpos[s2], lags)
            else:
                o1, o2 = float(np.mean(u[s1] ** 2)), float(np.mean(u[s2] ** 2))
            b = break_date_interval(jump, omega1=o1, omega2=o2, alpha=alpha)
            if b is None:
                klo = khi = None
            else:
                klo = max(1, kb - int(math.ceil(b[1])))
                khi = min(n - 1, kb - int(math.floor(b[0])))
            rows.append({"break": i + 1, "date": _label(p.labels[p.tpos[kb]]), "breakpoint": kb,
                         "ci_low": None if klo is None else _label(p.labels[p.tpos[klo]]),
                         "ci_high": None if khi is None else _label(p.labels[p.tpos[khi]]),
                         "breakpoint_ci_low": klo, "breakpoint_ci_high": khi, "shift": jump})
        return pd.DataFrame(rows, columns=["break", "date", "breakpoint", "ci_low", "ci_high", "breakpoint_ci_low",
                                           "breakpoint_ci_high", "shift"])


@dataclass
class BaiPerronResults:
    """Result of :meth:`BaiPerron.fit`.

    Attributes
    ----------
    sequential : pandas.DataFrame
        One row per ``l = 0..max_breaks-1``: the sup-F(l+1|l) statistic, its p-value and
        ``alpha`` critical value, the date of the best additional break (``at``), ``reject``.
    bic_table : pandas.DataFrame
        ``breaks``, ``rss``, ``loglike``, ``bic`` and the break ``dates`` of the optimal
        partition for each number of breaks.
    n_breaks_sequential, n_breaks_bic : int
        Number of breaks chosen by the sequential test and by BIC.
    """

    model: BaiPerron
    partitions: dict[int, dict[str, Any]]
    sequential: pd.DataFrame
    bic_table: pd.DataFrame
    n_breaks_sequential: int
    n_breaks_bic: int
    alpha: float
    lags: int | None
    _cache: dict[int, pd.DataFrame] = field(default_factory=dict, repr=False)

    def _m(self, n_breaks: int | str | None) -> int:
        if n_breaks is None or n_breaks == "sequential":
            return self.n_breaks_sequential
        if n_breaks == "bic":
            return self.n_breaks_bic
        if isinstance(n_breaks, (int, np.integer)) and 0 <= n_breaks <= self.model.max_breaks:
            return int(n_breaks)
        raise ParameterError("n_breaks", n_breaks, "must be 'sequential', 'bic' or a number of breaks "
                             f"in 0..{self.model.max_breaks}")

    def breaks(self, n_breaks: int | str | None = "sequential") -> pd.DataFrame:
        """The breaks of the optimal partition with ``n_breaks`` breaks (default: the sequential choice).

        Columns: ``break``, ``date`` (first period of the new regime), ``breakpoint``
        (observations before it), ``ci_low``, ``ci_high`` (Bai 1997, level ``1 - alpha``;
        None when the interval cannot be computed), their breakpoint numbers and the ``shift``.
        """
        m = self._m(n_breaks)
        if m not in self._cache:
            self._cache[m] = self.model._intervals(self.partitions[m], self.alpha, self.lags or 0)
        return self._cache[m].copy()

    def breakpoints(self, n_breaks: int | str | None = "sequential") -> list[int]:
        """Breakpoint numbers (observations before each break) of the chosen partition."""
        return list(self.partitions[self._m(n_breaks)]["breakpoints"])

    def contains(self, date: Any, n_breaks: int | str | None = "sequential") -> bool:
        """Whether ``date`` lies in the interval of some break of the chosen partition."""
        p = self.model.prep
        pos = resolve_dates(p.frame, [date], "date")
        if len(pos) == 0:
            raise ParameterError("date", date, "lies outside the data")
        for _, r in self.breaks(n_breaks).iterrows():
            if r["breakpoint_ci_low"] is None or pd.isna(r["breakpoint_ci_low"]):
                continue
            if p.tpos[int(r["breakpoint_ci_low"])] <= pos[0] <= p.tpos[int(r["breakpoint_ci_high"])]:
                return True
        return False

    def to_dict(self) -> dict[str, Any]:
        m = self.model

        def brk(sel: str) -> list[dict[str, Any]]:
            out = []
            for _, r in self.breaks(sel).iterrows():
                out.append({"date": r["date"], "breakpoint": int(r["breakpoint"]), "ci_low": r["ci_low"],
                            "ci_high": r["ci_high"], "shift": _num(r["shift"])})
            return out

        return {
            "model": {"log": m.log, "breaks_in": list(m.breaks_in), "breaking_terms": m.z_names,
                      "common_terms": m.w_names, "cov": m.cov, "hac_lags": self.lags, "trim": m.trim_input,
                      "trim_obs": m.h, "max_breaks": m.max_breaks, "n_obs": int(len(m.prep.y))},
            "n_breaks_sequential": self.n_breaks_sequential, "n_breaks_bic": self.n_breaks_bic, "alpha": self.alpha,
            "breaks_sequential": brk("sequential"), "breaks_bic": brk("bic"),
            "sequential": [{"l": int(r.l), "statistic": _num(r.statistic), "p_value": _num(r.p_value),
                            "critical_value": _num(r.critical_value), "at": r.at, "reject": bool(r.reject)}
                           for r in self.sequential.itertuples()],
            "bic": [{"breaks": int(r.breaks), "rss": _num(r.rss), "bic": _num(r.bic), "dates": list(r.dates)}
                    for r in self.bic_table.itertuples()],
        }

    def summary(self) -> str:
        m = self.model
        scale = "log " if m.log else ""
        var = f"Bartlett long-run variance, {self.lags} lags" if m.cov == "hac" else "iid errors"
        lines = [f"Bai-Perron break dating ({scale}{m.prep.outcome}; breaking: {', '.join(m.z_names)}; "
                 f"common: {', '.join(m.w_names) or 'none'}; {len(m.prep.y)} observed periods, "
                 f"regimes >= {m.h}; {var})",
                 "  sequential sup-F(l+1|l):"]
        for r in self.sequential.itertuples():
            lines.append(f"    l={r.l}: {r.statistic:9.3f}  p = {r.p_value:.3g}  (crit {r.critical_value:.2f}, "
                         f"best new break {r.at})")
        lines.append(f"  breaks by sequential test: {self.n_breaks_sequential}; by BIC: {self.n_breaks_bic}")
        lines.append("  BIC: " + ", ".join(f"m={int(r.breaks)} {r.bic:.1f}" for r in self.bic_table.itertuples()))
        for label, sel in (("sequential", "sequential"), ("BIC", "bic")):
            b = self.breaks(sel)
            if len(b):
                lines.append(f"  breaks ({label}): " + "; ".join(
                    f"{r.date} [{r.ci_low}, {r.ci_high}]" for r in b.itertuples()))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()
