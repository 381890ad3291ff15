"""The command line: one readable line per user error, exit status 2, no traceback."""
from __future__ import annotations

import pytest

from raidstudy.cli import main


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["run", "-p", "bogus", "1"], "unknown parameter name"),
        (["run", "-p", "model_family", "logit"], "accepted values: 'negbin'"),
        (["run", "-p", "event_id", "no_such_event"], "unknown event id"),
        (["run", "-p", "event_id", "buccaneer_2001"], "outside the data"),
        (["run", "-p", "feeds", "nosuchfeed"], "nosuchfeed"),
        (["run", "-p", "pre_periods", "5"], "too few pre-event periods"),
        (["run", "notebooks/nope.ipynb"], "file not found"),
        # a zone name that does not exist, refused before any dump is read
        (["ingest", "/nonexistent-dumps", "--zone", "Mars/Olympus"], "'zone' = 'Mars/Olympus'"),
        (["build", "--releases", "/nonexistent-interim", "--day-zone", "Europe/Atlantis"],
         "'zone' = 'Europe/Atlantis'"),
    ],
)
def test_user_errors_are_one_line(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("raidstudy: error: ") and fragment in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_list_parameters(capsys):
    assert main(["run", "--list-parameters"]) == 0
    out = capsys.readouterr().out
    assert "event_id" in out and "sparks_2020" in out


def test_events_listing(capsys):
    assert main(["events"]) == 0
    out = capsys.readouterr().out
    assert "sparks_2020" in out and "2020-08-25" in out


def test_help_without_command(capsys):
    assert main([]) == 2
