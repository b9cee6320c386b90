"""The shipped targets keep to the vintage rule (calibration/TARGETS.md, "Vintage").

A calibration target may use only what was published on or before 2025-09-30, or be one of the
seed article's own figures (TMTPost AGI, October 2025). Every row of ``calibration/targets.csv``
says when its source was published (column ``published``), so the rule is checked here and cannot
silently regress when a target is added or re-sourced.
"""

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest

from aicircle import observables as obs
from aicircle.study.observables import OBSERVABLES as VOCABULARY

SHIPPED_TARGETS = Path(__file__).resolve().parents[1] / "calibration" / "targets.csv"
VINTAGE = dt.date(2025, 9, 30)
ARTICLE_DATE = dt.date(2025, 10, 9)   # the earliest date its text allows (TARGETS.md, "Vintage")
ARTICLE = "TMTPost AGI article"       # how a target's source names the seed article


@pytest.fixture(scope="module")
def targets():
    return pd.read_csv(SHIPPED_TARGETS, dtype=str, keep_default_na=False)


def _date(text):
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(f"not an ISO date: {text!r}")
    return dt.date.fromisoformat(text)


def _cites_article(source):
    return ARTICLE in source


def test_every_target_says_when_its_source_was_published(targets):
    assert "published" in targets.columns
    bad = []
    for _, row in targets.iterrows():
        try:
            _date(row["published"])
        except ValueError:
            bad.append((row["id"], row["published"]))
    assert not bad, bad


def test_every_source_was_published_by_september_2025_or_is_the_article(targets):
    late = []
    for _, row in targets.iterrows():
        published = _date(row["published"])
        if published <= VINTAGE:
            continue
        if published == ARTICLE_DATE and _cites_article(row["source"]):
            continue
        late.append((row["id"], row["published"]))
    assert not late, late


def test_the_articles_figures_carry_the_articles_date(targets):
    article = targets[targets["source"].map(_cites_article)]
    assert len(article) > 0
    assert (article["published"] == ARTICLE_DATE.isoformat()).all(), article["id"].tolist()


def test_no_source_dated_in_the_source_text_is_after_the_vintage(targets):
    # "(published YYYY-MM[-DD])" after a URL: a month counts as its last possible day
    late = []
    for _, row in targets.iterrows():
        for year, month, day in re.findall(r"\(published (\d{4})-(\d{2})(?:-(\d{2}))?",
                                           row["source"]):
            y, m = int(year), int(month)
            last = (dt.date(y + m // 12, m % 12 + 1, 1) - dt.timedelta(days=1)).day
            cited = dt.date(y, m, int(day) if day else last)
            if cited > VINTAGE:
                late.append((row["id"], cited.isoformat()))
    assert not late, late


def test_the_published_column_does_not_disturb_reading(targets):
    read = obs.read_targets(SHIPPED_TARGETS, VOCABULARY)
    assert read["id"].tolist() == targets["id"].tolist()
