"""The releases table: one row per unique release, whatever adapter it came from.

Schema (Parquet, ``data/interim/releases.parquet``; see :data:`RELEASES_SCHEMA`):

==============  =======================  =================================================
column          type                     meaning
==============  =======================  =================================================
``title``       string                   release name as pre'd (``\\'`` unescaped)
``group``       string                   text after the last ``-`` of the title ('' if none)
``section``     string                   the feed's raw, unharmonised section ('' if NULL)
``family``      string                   :data:`FAMILIES` member, see :func:`section_family`
``feed``        string                   where the pre-database learned of the release
``pre_time``    timestamp[s, UTC]        the first copy's pre time, converted to UTC from the
                                         dumps' zone (Europe/Berlin); srrdb: upload time
``nuke_code``   int8                     0 none, 1 unnuked, 2 nuked, 3 modnuked, 4 renuked,
                                         5 oldnuke (nZEDb codes); -1 unknown -- from the
                                         latest copy that states a status (every copy counts)
``nuked``       bool                     ``nuke_code`` in {2, 3, 4, 5}
``nuke_reason`` string                   '' when none (from the same copy as ``nuke_code``)
``size_mb``     float64                  release size in MB (decimal, as the feeds state it;
                                         the largest over the copies), null when unknown
``n_files``     int32                    file count (the largest over the copies), null when
                                         unknown (no 2018-2024 nZEDb row states one)
``origin``      dictionary<string>       input file, relative to the raw folder
``line``        int32                    1-based line (or record) number in ``origin``
==============  =======================  =================================================

Beside it, ``copies.parquet`` holds every copy that counts: one row per release and feed that
announced it (``release``: row number here; ``feed``; ``pre_time``: that feed's earliest time,
UTC), so that an indicator over a set of feeds counts a title whichever of them logged it first.

Section families
----------------
Sections are mapped case-insensitively (:data:`SECTION_FAMILY` lists every section seen in the
2018-2024 nZEDb dumps; unknown sections fall back on prefixes such as ``TV``, ``MOVIE``,
``GAMES``). Sections that say nothing about the content -- corrupt's ``PRE``, NULL or empty,
and the generic video sections ``X264``, ``XVID``, ``BLURAY``, ``DVDR`` -- use title
heuristics, applied in this order (first match wins):

1. ``xxx``: a ``XXX`` token in the title;
2. ``tv``: an episode or season tag (``S01E02``, ``S01``, ``S2020E01``, ``E05`` after a dot) or a
   dated episode with a video tag (``2020.08.25.720p``);
3. ``music``: a year just before the group, ``-2020-GROUP`` (music naming), or a music
   source tag (``-WEB-``, ``-CD-``, ``-VINYL-``, ``-FLAC-``...) followed by a year;
4. ``books``: ``eBook``, ``EPUB``, ``PDF``, ``MOBI``, ``AZW3``, ``Magazine`` or audiobook tags;
5. ``games``: console tags (``PS4``, ``PS5``, ``NSW``, ``XBOX``...), or well-known game groups
   (``CODEX``, ``PLAZA``, ``SKIDROW``, ``FLT``, ``TENOKE``...);
6. ``apps``: a version number with a platform tag (``v1.2.3.WinALL``, ``x64``, ``MacOS``,
   ``Linux``, ``Incl.Keygen``...);
7. ``movies``: a year followed by a video tag (``2020.1080p``, ``.x264``, ``BluRay``,
   ``WEBRip``...);
8. otherwise the section's own family (``movies`` for the generic video sections) or
   ``other``.

The heuristics are deliberately simple and documented here rather than learned; they are
checked in ``tests/data/test_releases.py``.
"""
from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "FAMILIES",
    "SECTION_FAMILY",
    "RELEASES_SCHEMA",
    "NUKED_CODES",
    "section_family",
    "section_families",
    "family_codes",
    "group_from_title",
    "groups_from_titles",
    "empty_releases",
]

#: Section families, in display order.
FAMILIES = ("tv", "movies", "music", "games", "apps", "books", "xxx", "other")

#: nZEDb nuke codes that mean "currently nuked".
NUKED_CODES = (2, 3, 4, 5)

#: Schema of the releases table.
RELEASES_SCHEMA = pa.schema([
    ("title", pa.string()),
    ("group", pa.string()),
    ("section", pa.string()),
    ("family", pa.string()),
    ("feed", pa.string()),
    ("pre_time", pa.timestamp("s", tz="UTC")),
    ("nuke_code", pa.int8()),
    ("nuked", pa.bool_()),
    ("nuke_reason", pa.string()),
    ("size_mb", pa.float64()),
    ("n_files", pa.int32()),
    ("origin", pa.dictionary(pa.int32(), pa.string())),
    ("line", pa.int32()),
])

_GUESS = "?"  # marker: decide from the title
_VIDEO = "?movies"  # generic video section: title heuristics, default movies

#: Raw section (upper-cased) -> family. ``?`` means "from the title"; ``?movies`` means
#: "from the title, movies if nothing matches".
SECTION_FAMILY: dict[str, str] = {
    # tv
    "TV-X264": "tv", "TV-XVID": "tv", "TV/SD-X264": "tv", "TV/HD-X264": "tv",
    "TV HD-1080P": "tv", "TV HD-720P": "tv", "TV X264-SD": "tv", "TV HD-2160P": "tv",
    "TV XVID": "tv", "TV DVD-R": "tv", "TV-DVDRIP": "tv", "TV HD-4320P": "tv", "ANIME": "tv",
    "TV-HD": "tv", "TV-SD": "tv", "TV-DVDR": "tv", "TV-BLURAY": "tv", "TV": "tv",
    # movies
    "MOVIE HD-1080P": "movies", "MOVIE HD-2160P": "movies", "MOVIE HD-720P": "movies",
    "MOVIE X264-SD": "movies", "MOVIES/HD-X264": "movies", "MOVIES/SD-X264": "movies",
    "MOVIE XVID": "movies", "MOVIE DVD-R": "movies", "MOVIES/DVDR": "movies",
    "MOVIE HD-BLURAY": "movies", "MOVIE X265-SD": "movies", "MOVIE HD-4320P": "movies",
    "X264": _VIDEO, "X265": _VIDEO, "XVID": _VIDEO, "BLURAY": _VIDEO, "DVDR": _VIDEO,
    "BLURAY-UHD": _VIDEO, "X264-HD": _VIDEO, "X264-SD": _VIDEO, "WEB": _VIDEO,
    # music
    "MP3": "music", "MP3/FLAC": "music", "FLAC": "music", "MVID": "music",
    "MUSIC VIDEO": "music", "MBLURAY": "music", "MDVDR": "music", "MUSIC": "music",
    # games
    "GAMES": "games", "GAMES/PC": "games", "GAMES/NSW": "games", "GAMES/PS3/PS4": "games",
    "GAMES/PLAYSTATION": "games", "GAMES/WII": "games", "CONSOLE PLAYSTATION": "games",
    "WII": "games", "NDS": "games", "XBOX": "games", "XBOX360": "games", "GBA": "games",
    "PSP": "games", "NGC": "games", "PS2": "games", "PS3": "games", "PS4": "games",
    "PS5": "games", "NSW": "games", "DOX": "games", "3DS": "games", "PSV": "games",
    # apps
    "0DAY": "apps", "APPZ": "apps", "APPS": "apps", "PDA": "apps", "ISO": "apps",
    # books
    "EBOOK": "books", "ABOOK": "books", "AUDIOBOOK": "books",
    # xxx
    "XXX": "xxx", "XXX/0DAY": "xxx", "XXX-IMGSET": "xxx", "XXX/IMGSET": "xxx",
    # other
    "SUBPACK": "other", "COVERS": "other", "SUBS": "other",
    # no information
    "PRE": _GUESS, "": _GUESS,
}

_PREFIXES = (
    ("XXX", "xxx"), ("TV", "tv"), ("MOVIE", "movies"), ("GAME", "games"), ("CONSOLE", "games"),
    ("MP3", "music"), ("FLAC", "music"), ("MUSIC", "music"), ("EBOOK", "books"),
    ("BOOK", "books"), ("APP", "apps"), ("0DAY", "apps"),
)

# Title heuristics (RE2 syntax, also valid for Python's re), in priority order.
_TITLE_RULES: tuple[tuple[str, str], ...] = (
    ("xxx", r"(?i)(^|[._ -])XXX([._ -]|$)"),
    ("tv", r"(?i)[._ -]S\d{1,4}(E\d{1,4}|D\d{1,2})|[._ -]S\d{1,2}[._ -]|[._ -]E\d{2,4}[._ -]"
           r"|[._ -](19|20)\d\d[._ -]\d\d[._ -]\d\d[._ -].*(HDTV|WEB|720p|1080p|2160p|x264|h264|x265|XviD)"),
    ("music", r"(?i)-(19|20)\d\d-[^-]+$|-(WEB|CD|\d{1,2}CD|CDS|CDM|CDR|VINYL|VLS|FLAC|SAT|FM|LINE|DAB|CABLE|DVB)-"
              r"(.*-)?(19|20)\d\d-"),
    ("books", r"(?i)[._ -](eBook|EPUB|PDF|MOBI|AZW3|Magazine|Audiobook|ABOOK)([._ -]|$)"),
    ("games", r"(?i)[._ -](PS[345]|PSV|NSW|XBOX(ONE|360)?|Switch|WiiU?|3DS)([._ -]|$)"
              r"|-(CODEX|PLAZA|SKIDROW|RELOADED|FLT|HOODLUM|DARKSiDERS|TiNYiSO|RAZOR1911|PROPHET|CPY|EMPRESS"
              r"|DOGE|RUNE|TENOKE|SiMPLEX|GOLDBERG|DINOByTES|ANOMALY|I_KnoW|P2P|VENOM|BigBlueBox|SUXXORS"
              r"|LiGHTFORCE|CHRONOS|ALiAS|DARKZER0|POSTMORTEM|RAZORDOX|ElAmigos)$"),
    ("apps", r"(?i)[._ -]v?\d+(\.\d+)+[._ -].*(WinALL|Win64|Win32|x64|x86|MacOSX?|Linux|Incl|Keygen|Cracked"
             r"|Retail|Multilingual|iOS|Android)"),
    ("movies", r"(?i)[._ -](19|20)\d\d[._ -].*(480p|576p|720p|1080p|2160p|x264|h264|x265|h265|XviD|BluRay"
               r"|WEB-?DL|WEBRip|DVDRip|BDRip|HDRip|DVDR|COMPLETE|HDTV)|[._ -](1080p|2160p|720p)[._ -].*"
               r"(x264|h264|x265|h265|BluRay|WEB)"),
)


_FAM_CODE = {f: i for i, f in enumerate(FAMILIES)}


@functools.cache
def families_array() -> pa.StringArray:
    """:data:`FAMILIES` as an Arrow array (built on first use: ``pa.array`` makes pyarrow
    import pandas, which importing this module should not pay for)."""
    return pa.array(list(FAMILIES), pa.string())


def _as_string_array(values) -> pa.Array:
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pa.array(list(values), pa.string())
    elif not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values


def _section_codes(sections) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the family code of the section (the default one for ``?`` sections) and
    whether the title decides (worked out once per distinct section; a dictionary-encoded
    column is used as it is)."""
    if not (isinstance(sections, pa.DictionaryArray) and sections.null_count == 0):
        sections = pc.dictionary_encode(pc.fill_null(sections, ""))
    uniq = pc.fill_null(sections.dictionary, "").to_pylist()
    fam = [_lookup(s) for s in uniq]
    code = np.array([_FAM_CODE["other" if f == _GUESS else f.lstrip(_GUESS)] for f in fam] or [0], np.int8)
    guess = np.array([f.startswith(_GUESS) for f in fam] or [False], bool)
    idx = sections.indices.to_numpy(zero_copy_only=False)
    return code[idx], guess[idx]


def _lookup(section: str) -> str:
    key = section.strip().strip("'").upper()
    if key in SECTION_FAMILY:
        return SECTION_FAMILY[key]
    for prefix, fam in _PREFIXES:
        if key.startswith(prefix):
            return fam
    return _GUESS


def _matches(titles: pa.Array, pattern: str) -> np.ndarray:
    return pc.fill_null(pc.match_substring_regex(titles, pattern), False).to_numpy(zero_copy_only=False)


def _from_titles(titles: pa.Array, codes: np.ndarray) -> np.ndarray:
    """Apply :data:`_TITLE_RULES` in order; each rule only sees the titles still undecided.

    ``codes`` holds the default family code of each title; returns the decided codes.
    """
    out = codes.copy()
    todo = np.arange(len(titles), dtype=np.int64)
    cur = titles
    for fam, pat in _TITLE_RULES:
        if len(todo) == 0:
            break
        hit = _matches(cur, pat)
        if hit.any():
            out[todo[hit]] = _FAM_CODE[fam]
            miss = ~hit
            todo = todo[miss]
            cur = cur.filter(pa.array(miss))
    return out


def section_families(sections, titles=None) -> pa.Array:
    """Vectorised :func:`section_family`.

    Parameters
    ----------
    sections : array-like of str
        Raw section strings (None/'' allowed), or a dictionary-encoded array of them.
    titles : array-like of str, optional
        Release titles, used where the section says nothing about the content.

    Returns
    -------
    pyarrow.StringArray
        One :data:`FAMILIES` member per input.
    """
    return families_array().take(pa.array(family_codes(sections, titles)))


def family_codes(sections, titles=None) -> np.ndarray:
    """:func:`section_families` as positions in :data:`FAMILIES` (int8).

    The ingest keeps families as a dictionary column (these codes over :data:`FAMILIES`)
    until the releases table is written.
    """
    if not isinstance(sections, pa.DictionaryArray):
        sections = _as_string_array(sections)
    codes, guess = _section_codes(sections)
    if titles is not None and guess.any():
        titles = _as_string_array(titles)
        idx = np.flatnonzero(guess)
        sub_titles = titles if len(idx) == len(titles) else titles.take(pa.array(idx))
        codes[idx] = _from_titles(pc.fill_null(sub_titles, ""), codes[idx])
    return codes


def section_family(section: str | None, title: str | None = None) -> str:
    """Map one raw section string (and, where needed, the title) to a family.

    Parameters
    ----------
    section : str or None
        The section as the feed reports it (``TV-X264``, ``MP3``, ``PRE``, ...), any case.
    title : str, optional
        The release name; used for ``PRE``/empty/generic-video sections (see module docs).

    Returns
    -------
    str
        One of :data:`FAMILIES`.

    Examples
    --------
    >>> section_family("TV-X264")
    'tv'
    >>> section_family("PRE", "Some.Show.S01E02.720p.WEB.h264-GRP")
    'tv'
    """
    res = section_families(pa.array([section], pa.string()),
                           None if title is None else pa.array([title], pa.string()))
    return res[0].as_py()


def groups_from_titles(titles) -> pa.Array:
    """Vectorised :func:`group_from_title` (pyarrow string array in, string array out)."""
    if not isinstance(titles, (pa.Array, pa.ChunkedArray)):
        titles = pa.array(list(titles), pa.string())
    g = pc.struct_field(pc.extract_regex(titles, r"-(?P<g>[^-]*)$"), [0])
    return pc.fill_null(g, "")


def group_from_title(title: str) -> str:
    """The release group: the title text after the last ``-`` ('' when there is none).

    Examples
    --------
    >>> group_from_title("Reign.S02E18.1080p.WEB.H264-EDHD")
    'EDHD'
    >>> group_from_title("no_group_here")
    ''
    """
    if title is None:
        return ""
    i = title.rfind("-")
    return title[i + 1:] if i >= 0 else ""


def empty_releases() -> pa.Table:
    """An empty table with :data:`RELEASES_SCHEMA`."""
    return RELEASES_SCHEMA.empty_table()
