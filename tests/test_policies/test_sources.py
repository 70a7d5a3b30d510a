"""Every policy value traces to its seed: the quoted passage is in the named seed file, verbatim."""
import re
from pathlib import Path

import pytest

from processors.policy import POLICY_ROOT, load_region

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"


def _squash(text: str) -> str:
    # The seed files are text extracted from PDFs: line breaks and spaces fall inside sentences.
    return re.sub(r"\s+", "", text)


def _sources():
    for region in sorted(p for p in POLICY_ROOT.iterdir() if (p / "region.yaml").exists()):
        _, _, files = load_region(region)
        for section, pfile in files.items():
            for name, param in pfile.parameters.items():
                for day, dated in param.values.items():
                    yield pytest.param(dated.source, id=f"{region.name}/{section}.{name}@{day}")


@pytest.mark.parametrize("source", list(_sources()))
def test_quote_is_verbatim_in_its_seed(source):
    if not SEEDS.is_dir():
        pytest.skip(f"seed texts not found at {SEEDS} (they live in shared/ beside the repository)")
    seed = SEEDS / source.file
    assert seed.exists(), f"{source.file} is not a seed file"
    assert _squash(source.quote) in _squash(seed.read_text(encoding="utf-8")), source.quote


def test_every_value_dated_on_a_rule_set_start_and_sourced():
    card, policies, files = load_region(POLICY_ROOT / "yunnan")
    assert [p.id for p in policies] == ["yunnan-provincial-2022", "yunnan-2024-11"]
    assert sum(len(f.parameters) for f in files.values()) >= 25
