"""Section families and groups."""
from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raidstudy.data.releases import FAMILIES, group_from_title, groups_from_titles, section_families, section_family


@pytest.mark.parametrize("section,title,family", [
    ("TV-X264", None, "tv"), ("Tv HD-1080p", None, "tv"), ("ANIME", None, "tv"),
    ("Movie HD-1080p", None, "movies"), ("Movies/SD-x264", None, "movies"),
    ("MP3", None, "music"), ("MP3/FLAC", None, "music"), ("Music Video", None, "music"),
    ("Games/NSW", None, "games"), ("DOX", None, "games"), ("0day", None, "apps"), ("Appz", None, "apps"),
    ("EBOOK", None, "books"), ("ABOOK", None, "books"), ("XXX/0day", None, "xxx"), ("SUBPACK", None, "other"),
    ("PRE", "Some.Show.S01E02.720p.WEB.h264-GRP", "tv"),
    ("PRE", "Some.Show.S03.1080p.BluRay.x264-GRP", "tv"),
    ("PRE", "Artist-Album-(CAT001)-WEB-2020-GRP", "music"),
    ("PRE", "Artist-Album-WEB-2020-GRP_INT", "music"),
    ("PRE", "Some.Movie.2019.1080p.BluRay.x264-GRP", "movies"),
    ("PRE", "Studio.20.08.25.Name.XXX.1080p.MP4-GRP", "xxx"),
    ("PRE", "Some.Game.Update.v1.2-CODEX", "games"),
    ("PRE", "Tool.Pro.v1.2.3.WinALL.Incl.Keygen-GRP", "apps"),
    ("PRE", "Some.Magazine.August.2020.PDF-GRP", "books"),
    ("PRE", "nothing_to_see", "other"),
    (None, "Show.S01E01.HDTV.x264-GRP", "tv"), ("", None, "other"),
    ("X264", "Show.S01E05.720p.BluRay.x264-GRP", "tv"), ("X264", "Film.2018.720p.BluRay.x264-GRP", "movies"),
    ("X264", "whatever", "movies"), ("Brand New Section", None, "other"), ("tv-weird", None, "tv"),
])
def test_section_family(section, title, family):
    assert section_family(section, title) == family
    assert family in FAMILIES


def test_vectorised_matches_scalar():
    secs = ["PRE", "MP3", "X264", None, "PRE"]
    titles = ["A.S01E01.x264-G", "B-2020-G", "C.2019.1080p.x264-G", "D.S02E03-G", "x"]
    vec = section_families(pa.array(secs, pa.string()), pa.array(titles, pa.string())).to_pylist()
    assert vec == [section_family(s, t) for s, t in zip(secs, titles)]


def test_group_from_title():
    assert group_from_title("Reign.S02E18.1080p.WEB.H264-EDHD") == "EDHD"
    assert group_from_title("Artist-Album-WEB-2020-GRP_INT") == "GRP_INT"
    assert group_from_title("nogroup") == ""
    assert group_from_title("ends-with-") == ""
    titles = ["a-B", "nogroup", "x-y-Z", "ends-"]
    assert groups_from_titles(pa.array(titles)).to_pylist() == [group_from_title(t) for t in titles]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("a-Z.é-ü_ \u2010\u00ad"), max_size=12), max_size=30),
       st.integers(0, 5))
def test_groups_from_titles_matches_the_scalar_rule(titles, start):
    """The vectorised group rule (any length, offset, non-ASCII text) is the scalar rule."""
    arr = pa.array(titles, pa.string()).slice(min(start, len(titles)))
    assert groups_from_titles(arr).to_pylist() == [group_from_title(t) for t in titles[start:]]


_TOKENS = ["S01E02", "s01", "S2020E01", "E05", "XXX", "xxx", "2020", "1999", "08", "25", "1080p", "720P", "WEB",
           "web", "CD", "Vinyl", "FLAC", "eBook", "EPUB", "PS4", "nsw", "CODEX", "v1.2.3", "WinALL", "x64", "Keygen",
           "x264", "BluRay", "COMPLETE", "HDTV", "Grp", "\u017f01E02", "\u212a", "\u00e9", "-", ".", "_", " ", "-"]


def _families_by_the_rules(sections, titles):
    """The families by the documented rules, one title and one (?i) rule at a time."""
    import pyarrow.compute as pc

    import raidstudy.data.releases as R

    out = []
    for section, title in zip(sections, titles):
        fam = R._lookup(section or "")
        if fam.startswith(R._GUESS):
            default = fam.lstrip(R._GUESS) or "other"
            fam = next((f for f, pat in R._TITLE_RULES
                        if title is not None and pc.match_substring_regex(pa.array([title]), pat)[0].as_py()),
                       default)
        out.append(fam)
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["PRE", "", "X264", "MP3", None]),
                          st.lists(st.sampled_from(_TOKENS), max_size=9).map("".join)), max_size=30))
def test_families_follow_the_rules_in_any_case_and_script(rows):
    """The vectorised rules (with the word shortcut) give the families of the (?i) rules
    applied one title at a time, also where RE2 folds non-ASCII letters (long s, Kelvin
    sign) onto ASCII ones."""
    sections = [s for s, _ in rows]
    titles = [t for _, t in rows]
    got = section_families(pa.array(sections, pa.string()), pa.array(titles, pa.string())).to_pylist()
    assert got == _families_by_the_rules(sections, titles)


def test_long_s_and_kelvin_sign_fold_as_re2_folds_them():
    titles = ["Show.\u017f01E02.720p-GRP", "Show.S01E02.720p-GRP", "Show.s01e02-GRP",
              "Some.eBoo\u212a.2020-G", "App.v1.2.Incl.\u212aeygen-G"]
    assert section_families(pa.array(["PRE"] * 5), pa.array(titles)).to_pylist() == \
        ["tv", "tv", "tv", "books", "apps"]
