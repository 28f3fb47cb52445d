"""evaluation: harness on real tiny bundles (digital + analog), outputs, report, `csilink eval`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from evaluation.harness import evaluate, score  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from training.testing import tiny_bundle

    root = tmp_path_factory.mktemp("eval")
    tiny_bundle(root, "csinet", seconds=1.0)
    tiny_bundle(root, "csinet-jscc", seconds=1.0)
    return root / "bundles", root / "tiny.h5"


def test_rows_for_every_rate_and_snr(setup: tuple[Path, Path]) -> None:
    root, data = setup
    rows, ctx = evaluate(
        ["tiny-csinet", "tiny-csinet-jscc"], data, "test", 40, (-5.0, 15.0), roots=(str(root),)
    )
    got = {(r.model, r.rate, r.snr_db) for r in rows}
    assert got == {
        ("tiny-csinet", "b24", None),
        ("tiny-csinet-jscc", "k8", -5.0),
        ("tiny-csinet-jscc", "k8", 15.0),
        ("tiny-csinet-jscc", "k4", -5.0),
        ("tiny-csinet-jscc", "k4", 15.0),
    }
    for r in rows:
        assert r.n == 40 and np.isfinite(r.nmse_db_ad) and 0 <= r.sgcs <= 1 and 0 <= r.rho <= 1
        assert r.sf_truth == "full" and r.n_sf == 32 and r.nmse_db_sf is not None
    assert ctx["dataset_id"] and ctx["n_sf"] == 32


def test_seeded_and_snr_dependent(setup: tuple[Path, Path]) -> None:
    root, data = setup
    a, _ = evaluate(["tiny-csinet-jscc"], data, "test", 40, (0.0,), seed=1, roots=(str(root),))
    b, _ = evaluate(["tiny-csinet-jscc"], data, "test", 40, (0.0,), seed=1, roots=(str(root),))
    c, _ = evaluate(["tiny-csinet-jscc"], data, "test", 40, (0.0,), seed=2, roots=(str(root),))
    assert [r.nmse_db_ad for r in a] == [r.nmse_db_ad for r in b]
    assert [r.nmse_db_ad for r in a] != [r.nmse_db_ad for r in c]


def test_score_perfect_and_cropped_truth(setup: tuple[Path, Path]) -> None:
    from evaluation.harness import load_truth

    _, data = setup
    t = load_truth(data, "test", 10, set())
    s = score(t, "x", t.x_ad)
    assert s["nmse_db_ad"] < -100 and 0.9 < s["sgcs"] < 1.0  # full SF truth: the crop loses a little
    t.x_sf = None  # no SF truth: rho/SGCS against the cropped truth, no SF NMSE
    s = score(t, "x", t.x_ad)
    assert s["sf_truth"] == "cropped" and s["nmse_db_sf"] is None and s["sgcs"] > 0.999


def test_cli_writes_table_csv_json_png(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from csilink.cli import main

    root, data = setup
    out = tmp_path / "ev"
    rc = main(
        [
            "eval",
            "--bundles",
            "tiny-csinet",
            "tiny-csinet-jscc",
            "--root",
            str(root),
            "--dataset",
            str(data),
            "--n",
            "30",
            "--snr-db",
            "10",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "tiny-csinet" in text and "NMSE" in text
    doc = json.loads((out / "eval.json").read_text())
    assert doc["provenance"]["git_commit"] and "numpy" in doc["provenance"]["packages"]
    assert len(doc["results"]) == 3
    assert (out / "eval.csv").read_text().count("\n") == 4
    assert (out / "eval_rd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_unknown_bundle_and_bad_split(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from csilink.cli import main

    root, data = setup
    assert main(["eval", "--bundles", "nope", "--root", str(root), "--dataset", str(data)]) == 1
    assert "no bundle 'nope'" in capsys.readouterr().err


def test_report_renders_all_bundles(setup: tuple[Path, Path], tmp_path: Path) -> None:
    from evaluation.report import make_report

    root, data = setup
    md = make_report(data, "test", 20, (0.0,), root, tmp_path / "RESULTS.md", tmp_path / "bench")
    text = md.read_text()
    assert "<!-- headline:start -->" in text and "<!-- headline:end -->" in text
    assert "Digital CSI feedback" in text and "Analog JSCC" in text
    assert "`tiny-csinet`" in text and "`tiny-csinet-jscc`" in text
    assert (tmp_path / "bench" / "results.json").is_file() and (
        tmp_path / "bench" / "results_rd.png"
    ).is_file()


def test_report_sections_per_training_dataset_and_readme_sync(
    setup: tuple[Path, Path], tmp_path: Path
) -> None:
    """Bundles run on the dataset they were trained on, a second dataset gets its own section,
    and the README's headline block is replaced by the page's (nothing else in it changes)."""
    from evaluation.report import make_report, plan_datasets
    from shared.bundle import Bundle, find_bundles
    from training.testing import tiny_dataset

    root, data = setup
    other = tiny_dataset(tmp_path / "other", n_train=64, n_val=16, n_test=16)  # another dataset id
    bundles = [Bundle.load(p) for p in find_bundles(root)]
    plan = plan_datasets(bundles, [other, data])
    # the primary dataset stays (nothing trained on it); the tiny bundles go to their own
    assert [(d, len(bs)) for d, bs in plan] == [(other, 0), (data, len(bundles))]
    assert plan_datasets(bundles, [other]) == [(other, bundles)]  # unknown training set: the primary
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- headline:start -->\nold\n<!-- headline:end -->\noutro\n")
    make_report(data, "test", 12, (0.0,), root, tmp_path / "R.md", tmp_path / "bench", readme=readme)
    text = readme.read_text()
    assert text.startswith("intro\n<!-- headline:start -->\n| model |")
    assert text.endswith("<!-- headline:end -->\noutro\n")
    assert "old" not in text and "`tiny-csinet`" in text


def test_one_dataset_section_is_updated_in_place(setup: tuple[Path, Path], tmp_path: Path) -> None:
    """``--only-dataset``: the further dataset's section is added, then replaced on a rerun; the
    rest of the page stays byte for byte; a dataset no bundle was trained on is named."""
    from evaluation.report import update_dataset_section
    from shared.errors import InvalidInput
    from training.testing import tiny_dataset

    root, data = setup
    page = tmp_path / "R.md"
    page.write_text("# Results\n\nprimary\n\n## Multi-modal feedback\n\nmm\n")
    update_dataset_section(data, "test", 12, (0.0,), root, page, tmp_path / "bench")
    once = page.read_text()
    assert once.startswith("# Results\n\nprimary\n") and once.endswith("## Multi-modal feedback\n\nmm\n")
    assert once.count(f"## Results on `{data.name}`") == 1 and "### Headline" in once
    update_dataset_section(data, "test", 12, (0.0,), root, page, tmp_path / "bench")
    assert page.read_text().count(f"## Results on `{data.name}`") == 1
    other = tiny_dataset(tmp_path / "other", n_train=64, n_val=16, n_test=16)
    with pytest.raises(InvalidInput, match="no bundle .* was trained on"):
        update_dataset_section(other, "test", 12, (0.0,), root, page, tmp_path / "bench")


def test_headline_keeps_only_rates_that_gain() -> None:
    """A model's rate enters the headline only when it beats its cheaper rates by 0.1 dB;
    analog rows only at the headline SNR; other models are untouched."""
    from evaluation.harness import Row
    from evaluation.report import HEADLINE_SNR, headline

    def row(model: str, bits: int | None, nmse: float, symbols: int | None = None, snr=None) -> Row:
        return Row(
            model,
            "f",
            f"r{bits or symbols}",
            bits,
            symbols,
            snr,
            10,
            nmse,
            None,
            0.9,
            0.8,
            10,
            "cropped",
            "x",
            0.1,
            0.1,
        )

    rows = [
        row("a", 512, -3.68),
        row("a", 768, -3.92),
        row("a", 1024, -3.97),
        row("a", 2048, -4.00),
        row("b", 64, -5.0),
        row("b", 128, -5.05),
        row("c", None, -6.0, 16, HEADLINE_SNR),
        row("c", None, -6.05, 32, HEADLINE_SNR),
        row("c", None, -9.0, 32, 20.0),
    ]
    got = [(r.model, r.bits or r.symbols) for r in headline(rows)]
    assert got == [("b", 64), ("a", 512), ("a", 768), ("c", 16)]
