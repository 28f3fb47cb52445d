"""Scenario files: schema errors name the file, the field and the problem; sweeps; extensions;
the shipped scenarios validate. No services needed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from csilink import scenario as S
from csilink.scenario import (
    ResolvedScenario,
    Scenario,
    load_scenario,
    parse_scenario,
    register_scenario_extension,
)
from shared.errors import InvalidInput, NotFound

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample" / "cdl-c-fdd-sample.h5"
TYPE2 = ROOT / "bundles" / "type2-118b"  # a shipped, non-learned bundle (no training needed)


def _write(tmp_path: Path, doc: Any, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return p


def _base(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": "t", "dataset": {"path": str(SAMPLE)}, "models": str(TYPE2), "reports": 4}
    doc.update(over)
    return doc


def _error(tmp_path: Path, doc: Any, exc: type[Exception] = InvalidInput) -> str:
    p = _write(tmp_path, doc)
    with pytest.raises(exc) as ei:
        load_scenario(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}: "), msg  # every message names the file first
    return msg


SNR_MSG = r": channel\.snr_db: must be a number or a list of numbers$"
IE, NF = InvalidInput, NotFound
needs_sample = pytest.mark.skipif(not (SAMPLE.is_file() and TYPE2.is_dir()),
                                  reason="needs data/sample and bundles/type2-118b")


@needs_sample
def test_minimal_scenario_resolves(tmp_path: Path) -> None:
    rs = load_scenario(_write(tmp_path, _base()))
    assert isinstance(rs, ResolvedScenario)
    (pt,) = rs.scenario.points()
    assert pt.ues == 1 and pt.models.ue == pt.models.bs == str(TYPE2)
    assert rs.rates[(str(TYPE2), None)] == "b118"  # the bundle's first rate
    assert pt.channel == {"seed": 0}  # LinkConfig defaults otherwise; the scenario seed keys the draws


@pytest.mark.parametrize(
    ("doc", "pattern"),
    [
        (_base(colour="red"), r": colour: unknown field \(allowed: name, description, dataset, .*\)"),
        (_base(dataset={"path": "x.h5", "splt": "t"}), r": dataset\.splt: unknown field \(allowed: path,"),
        (_base(models={"ue": "a", "bss": "b"}), r": models\.bss: unknown field \(allowed: ue, bs, label\)"),
        (_base(models=["a", {"ue": "b", "x": 1}]), r": models\[1\]\.x: unknown field"),
        (_base(reports="many"), r": reports: must be an integer"),
        (_base(reports=0), r": reports: Input should be greater than or equal to 1"),
        (_base(ues=[1, "two"]), r": ues\[1\]: must be an integer"),
        (_base(ues=[]), r": ues: an empty list sweeps over nothing"),
        (_base(seed=1.5), r": seed: must be an integer"),
        (_base(rate=[True]), r": rate\[0\]: must be a string or an integer"),
        (_base(channel={"snr_db": "loud"}), SNR_MSG),
        (_base(channel={"snr_db": [0, "x", 10]}), SNR_MSG),
        (_base(channel={"snr_db": []}), SNR_MSG),
        (_base(channel={"snr_db": [0, True]}), SNR_MSG),
        (_base(channel={"seed": 3}), r": channel\.seed: set the scenario's top-level seed instead"),
        (_base(channel=[1, 2]), r": channel: must be a mapping of channel settings"),
        (_base(extensions={"nope": {}}), r": extensions\.nope: unknown extension \(known: "),
        ({"models": "a"}, r": dataset: required field is missing"),
        ("[1, 2]", r": a scenario must be a YAML mapping, got list"),
        ("name: [unclosed", r": not valid YAML"),
    ],
)
def test_schema_errors_name_file_field_and_problem(tmp_path: Path, doc: Any, pattern: str) -> None:
    msg = _error(tmp_path, doc)
    assert re.search(pattern, msg), msg


@needs_sample
@pytest.mark.parametrize(
    ("over", "pattern", "exc"),
    [
        ({"dataset": {"path": "no/such.h5"}}, r": dataset\.path: no such file: no/such\.h5", IE),
        ({"dataset": {"path": str(SAMPLE), "split": "dev"}}, r": dataset\.split: .* has no split 'dev'", IE),
        ({"models": "no-such-model"}, r": models\.ue: unknown bundle 'no-such-model'", NotFound),
        ({"models": {"ue": str(TYPE2), "bs": "ghost"}}, r": models\.bs: unknown bundle 'ghost'", NotFound),
        ({"models": [str(TYPE2), "ghost"]}, r": models\[1\]\.ue: unknown bundle 'ghost'", NotFound),
        ({"rate": "b999"}, r": rate: bundle type2-118b has no rate 'b999' \(rates: b118", InvalidInput),
        ({"rate": [118, 7]}, r": rate: bundle type2-118b has no rate 7", InvalidInput),
        ({"channel": {"mode": "fast"}}, r": channel\.mode: Input should be 'awgn', ", InvalidInput),
        ({"channel": {"snr_db": [0, 500]}}, r": channel\.snr_db: Input should be less than or eq", IE),
        ({"channel": {"n_rx": 0}}, r": channel\.n_rx: Input should be greater than or equal to 1", IE),
        ({"channel": {"modulatoin": "qpsk"}}, r": channel\.modulatoin: unknown field \(allowed: ideal,", IE),
    ],
)
def test_checks_against_files_bundles_and_link_config(tmp_path: Path, over: dict[str, Any], pattern: str,
                                                      exc: type[Exception]) -> None:
    msg = _error(tmp_path, _base(**over), exc)
    assert re.search(pattern, msg), msg


def test_incomplete_bundle_is_refused(tmp_path: Path) -> None:
    import json
    import shutil

    if not TYPE2.is_dir():
        pytest.skip("needs bundles/type2-118b")
    b = tmp_path / "bundle"
    shutil.copytree(TYPE2, b)
    m = json.loads((b / "manifest.json").read_text())
    m["files"]["weights.safetensors"] = "0" * 64  # listed, hashed, but not there
    (b / "manifest.json").write_text(json.dumps(m))
    msg = _error(tmp_path, _base(models=str(b)))
    assert re.search(r": models\.ue: bundle type2-118b at .* refused: weights\.safetensors is missing", msg)


def test_sweep_is_the_cartesian_product_models_outermost() -> None:
    sc = parse_scenario(_base(
        models=["a", {"ue": "a", "bs": "b"}], ues=[1, 4], rate=["r1", 64],
        channel={"mode": ["awgn", "rayleigh"], "snr_db": [0, 5.5], "n_rx": 2},
    ))
    pts = sc.points()
    assert len(pts) == 2 * 2 * 2 * 2 * 2
    assert [p.index for p in pts] == list(range(32))
    assert pts[0].models.name == "a" and pts[16].models.name == "a->b"
    assert [(p.mode, p.ues, p.rate, p.snr_db) for p in pts[:4]] == [
        ("awgn", 1, "r1", 0.0), ("awgn", 1, "r1", 5.5), ("awgn", 1, 64, 0.0), ("awgn", 1, 64, 5.5)]
    assert pts[5].channel == {"mode": "awgn", "snr_db": 5.5, "n_rx": 2, "seed": 0}
    assert {(p.mode, p.ues, p.rate, p.snr_db, p.models.name) for p in pts}.__len__() == 32
    # A single value and a one-entry list are the same scenario.
    one = parse_scenario(_base(ues=3, models="a", rate="r"))
    assert one.points()[0].ues == 3 and one.model_dump() == parse_scenario(
        _base(ues=[3], models=[{"ue": "a"}], rate=["r"])).model_dump()


class _Diffusion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = Field(2, ge=1, le=20)
    threshold_db: float | None = None

    def node_settings(self, ctx: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {"bs": {"hooks": {ctx["bs_model_id"]: {"refiner": {"name": "ddim", "steps": self.steps}}}}}


def test_extensions_register_and_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(S, "_EXTENSIONS", dict(S._EXTENSIONS))
    register_scenario_extension("diffusion_test", _Diffusion)
    register_scenario_extension("diffusion_test", _Diffusion)  # same model again: fine
    sc = parse_scenario(_base(extensions={"diffusion_test": {"steps": 4}}), "x.yaml")
    ext = sc.extensions["diffusion_test"]
    assert isinstance(ext, _Diffusion) and ext.steps == 4
    assert parse_scenario(_base(extensions={"diffusion_test": None})).extensions["diffusion_test"].steps == 2
    with pytest.raises(InvalidInput, match=r"^x\.yaml: extensions\.diffusion_test\.steps: Input should"):
        parse_scenario(_base(extensions={"diffusion_test": {"steps": 50}}), "x.yaml")
    with pytest.raises(InvalidInput, match=r"^x\.yaml: extensions\.diffusion_test\.stepz: unknown field"):
        parse_scenario(_base(extensions={"diffusion_test": {"stepz": 1}}), "x.yaml")

    class Other(BaseModel):
        pass

    with pytest.raises(InvalidInput, match="already registered"):
        register_scenario_extension("diffusion_test", Other)
    with pytest.raises(InvalidInput, match="pydantic model class"):
        register_scenario_extension("x", dict)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="plain identifier"):
        register_scenario_extension("a b", Other)


def test_extension_settings_reach_the_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner merges extension ``node_settings`` into the nodes' Configure calls."""
    from csilink.runner import Runner

    monkeypatch.setattr(S, "_EXTENSIONS", dict(S._EXTENSIONS))
    register_scenario_extension("diffusion_test", _Diffusion)
    sc = parse_scenario(_base(models="m", extensions={"diffusion_test": {"steps": 3}}))
    r = Runner.__new__(Runner)
    r.sc = sc
    r.manifest = lambda ref: type("M", (), {"model_id": f"id-{ref}"})()  # type: ignore[method-assign]
    got = r._extension_settings(sc.points()[0])
    assert got == {"bs": {"hooks": {"id-m": {"refiner": {"name": "ddim", "steps": 3}}}}}


SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))


def test_the_required_scenarios_are_shipped() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"default", "digital_snr_sweep", "analog_snr_sweep", "multi_ue", "model_swap"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenarios_validate(path: Path) -> None:
    sc = load_scenario(path, check=False)
    assert isinstance(sc, Scenario) and (sc.points() or sc.image_link.points())
    refs = {r for pair in sc.model_pairs for r in (pair.ue, pair.bs)}
    refs |= set(sc.image_link.bundles if sc.image_link else [])
    missing = sorted(r for r in refs if not (ROOT / "bundles" / str(r)).is_dir())
    if missing:
        pytest.skip(f"bundles not shipped yet: {missing}")
    if sc.image_link and not (ROOT / sc.image_link.images.path).is_file():
        pytest.skip(f"image sample not shipped yet: {sc.image_link.images.path}")
    rs = load_scenario(path)
    assert isinstance(rs, ResolvedScenario)
    assert rs.dataset_path.is_file() if sc.dataset else rs.image_link.image_path.is_file()
