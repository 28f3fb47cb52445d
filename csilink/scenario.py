"""Scenario files: what ``csilink run`` does, as a validated YAML document (docs/scenarios.md).

A scenario names a dataset split, how many reports each UE sends, the model bundle on each
node, the rate, the channel (the emulator's ``LinkConfig`` fields) and the seed. Four fields
may hold a list instead of one value; their cartesian product is the sweep:

* ``channel.snr_db`` (numbers), ``channel.mode`` (channel models: awgn, rayleigh, tdl-c...),
* ``rate`` (rate names or bit/symbol counts of the UE bundle),
* ``ues`` (numbers of UEs),
* ``models`` (``{ue, bs}`` bundle pairs: a model swap between sweep points).

``extensions`` holds sections that method families register with
:func:`register_scenario_extension` (their own pydantic models, validated here too).

``image_link`` sweeps the downlink semantic image link instead of (or besides) the CSI reports
(``csilink.image_runner``); a scenario with it may leave out ``dataset`` and ``models``.

Every problem is raised as :class:`shared.errors.InvalidInput` (or ``NotFound`` for an unknown
bundle) with the file, the field path and the problem, e.g.
``scenarios/x.yaml: channel.snr_db: must be a number or a list of numbers``.
"""

from __future__ import annotations

import importlib
import itertools
import math
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from csilink.image_runner import ImageLinkSection, ResolvedImageLink
from shared.errors import InvalidInput, NotFound

#: Channel fields that may be swept (a list of values instead of one).
SWEEP_CHANNEL_FIELDS = ("snr_db", "mode")

# --------------------------------------------------------------------------- extensions

_EXTENSIONS: dict[str, type[BaseModel]] = {}
_EXTENSION_MODULES_LOADED = False


def register_scenario_extension(name: str, model: type[BaseModel]) -> type[BaseModel]:
    """Register ``extensions.<name>`` of scenario files, validated by the pydantic ``model``.

    Call it at import time of a small torch-free module ``models/<family>/scenario_ext.py``;
    the loader imports every such module before validating a scenario. Registering the same
    name twice with a different model is an error (two families would fight over a section).
    Returns ``model`` so it can be used as ``register_scenario_extension("x", Model)`` or as a
    helper in a decorator.
    """
    if not name or not name.replace("_", "").isalnum():
        raise InvalidInput(f"scenario extension name {name!r} must be a plain identifier")
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise InvalidInput(f"scenario extension {name!r} must be a pydantic model class, got {model!r}")
    old = _EXTENSIONS.get(name)
    if old is not None and old is not model:
        raise InvalidInput(f"scenario extension {name!r} is already registered by {old.__module__}")
    _EXTENSIONS[name] = model
    return model


def scenario_extensions() -> dict[str, type[BaseModel]]:
    """Registered extensions by name (after importing every ``models/*/scenario_ext.py``)."""
    _load_extension_modules()
    return dict(_EXTENSIONS)


def _load_extension_modules() -> None:
    """Import ``models.<pkg>.scenario_ext`` for every family folder that has one (torch-free)."""
    global _EXTENSION_MODULES_LOADED
    if _EXTENSION_MODULES_LOADED:
        return
    _EXTENSION_MODULES_LOADED = True
    try:
        import models
    except ImportError:  # pragma: no cover - models/ is part of the package
        return
    for info in pkgutil.iter_modules(models.__path__):
        if not info.ispkg:
            continue
        if (Path(models.__path__[0]) / info.name / "scenario_ext.py").is_file():
            importlib.import_module(f"models.{info.name}.scenario_ext")


# --------------------------------------------------------------------------- schema

Number = StrictInt | StrictFloat


class DatasetSpec(BaseModel):
    """Which world the UEs live in: an HDF5 dataset file and one of its splits."""

    model_config = ConfigDict(extra="forbid")
    path: str
    split: str = "test"
    #: Use the split's samples in a seeded random order instead of file order.
    shuffle: bool = False


class ModelPair(BaseModel):
    """The bundle on each node: a path or a model id looked up under ``bundles/``.

    ``bs`` defaults to ``ue``; a different ``bs`` shows what a mismatched pair does (the BS
    refuses reports of a model it cannot decode, or decodes a compatible one).
    """

    model_config = ConfigDict(extra="forbid")
    ue: str
    bs: str | None = None
    label: str | None = None

    @model_validator(mode="after")
    def _default_bs(self) -> ModelPair:
        if self.bs is None:
            self.bs = self.ue
        return self

    @property
    def name(self) -> str:
        """``label``, else the bundle names (folder names of path references)."""
        ue, bs = Path(self.ue).name, Path(self.bs or self.ue).name
        return self.label or (ue if self.ue == self.bs else f"{ue}->{bs}")


class Scenario(BaseModel):
    """The validated content of a scenario file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    name: str = "scenario"
    description: str = ""
    #: Required unless the scenario has an ``image_link`` section (so are ``models``).
    dataset: DatasetSpec | None = None
    #: Reports each UE sends at each sweep point (one sample each).
    reports: int = Field(default=256, ge=1, le=10_000_000)
    #: Number(s) of UEs; a single value is stored as a one-entry list (so are models, rate).
    ues: list[StrictInt] = Field(default_factory=lambda: [1])
    models: list[ModelPair] = Field(default_factory=list)
    #: Rate name(s) of the UE bundle, or bit / symbol counts; None: the bundle's first rate.
    rate: list[StrictStr | StrictInt | None] = Field(default_factory=lambda: [None])
    #: The channel emulator's LinkConfig fields; ``snr_db`` and ``mode`` may be lists.
    channel: dict[str, Any] = Field(default_factory=dict)
    #: CSI-RS SNR (dB) of the UE's channel estimate; None = perfect CSI at the UE.
    csi_rs_snr_db: float | None = Field(default=None, ge=-50, le=100)
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    #: Reports per gRPC call.
    batch: int = Field(default=64, ge=1, le=100_000)
    #: Output folder; default ``runs/<name>``.
    output: str | None = None
    #: How long a batch keeps being retried (seconds) on UNAVAILABLE / DEADLINE_EXCEEDED, same
    #: seqs each time; a node restart must fit in it. 0 = never retry.
    retry_s: float = Field(default=60.0, ge=0, le=3600)
    #: Deadline of one call, seconds.
    deadline_s: float = Field(default=30.0, gt=0, le=3600)
    extensions: dict[str, Any] = Field(default_factory=dict)
    #: The downlink semantic image link (``csilink.image_runner``).
    image_link: ImageLinkSection | None = None

    @model_validator(mode="after")
    def _csi_or_image(self) -> Scenario:
        if self.image_link is None:
            if self.dataset is None:
                raise _FieldError(("dataset",), "required field is missing")
            if not self.models:
                raise _FieldError(("models",), "required field is missing")
        elif (self.dataset is None) != (not self.models):
            missing = "dataset" if self.dataset is None else "models"
            raise _FieldError((missing,), "required field is missing (CSI reports need dataset and models)")
        return self

    @field_validator("ues", "models", "rate", mode="before")
    @classmethod
    def _as_list(cls, v: Any, info: ValidationInfo) -> Any:
        if not isinstance(v, list):
            v = [v]
        elif not v:
            raise ValueError("an empty list sweeps over nothing; give at least one value")
        if info.field_name == "models":  # ``models: some-id`` means the same bundle on both nodes
            v = [{"ue": m} if isinstance(m, str) else m for m in v]
        return v

    @field_validator("ues")
    @classmethod
    def _ues_ok(cls, v: list[int]) -> list[int]:
        for n in v:
            if n < 1 or n > 10_000:
                raise ValueError(f"number of UEs must be 1..10000, got {n}")
        return v

    @field_validator("rate")
    @classmethod
    def _rate_ok(cls, v: list[Any]) -> list[Any]:
        for r in v:
            if isinstance(r, int) and r < 1:
                raise ValueError(f"a rate is a name or a positive bit/symbol count, got {r!r}")
        return v

    @field_validator("channel", mode="before")
    @classmethod
    def _channel_ok(cls, v: Any) -> Any:
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise ValueError("must be a mapping of channel settings")
        snr = v.get("snr_db")
        if snr is not None:
            vals = snr if isinstance(snr, list) else [snr]
            ok = bool(vals) and all(
                isinstance(s, int | float) and not isinstance(s, bool) and math.isfinite(s) for s in vals
            )
            if not ok:
                raise _FieldError(("channel", "snr_db"), "must be a number or a list of numbers")
        mode = v.get("mode")
        if isinstance(mode, list) and (not mode or not all(isinstance(m, str) for m in mode)):
            raise _FieldError(("channel", "mode"), "must be a channel mode name or a list of names")
        if "seed" in v:
            raise _FieldError(("channel", "seed"), "set the scenario's top-level seed instead")
        return v

    # ----------------------------------------------------------------- derived

    @property
    def model_pairs(self) -> list[ModelPair]:
        return self.models

    @property
    def ue_counts(self) -> list[int]:
        return self.ues

    @property
    def rates(self) -> list[str | int | None]:
        return self.rate

    def channel_values(self, key: str) -> list[Any]:
        """The swept values of a channel field (one entry when not swept; [None] when absent)."""
        if key not in self.channel:
            return [None]
        v = self.channel[key]
        return v if isinstance(v, list) else [v]

    def points(self) -> list[SweepPoint]:
        """The sweep: the cartesian product, models outermost (fewest swaps), SNR innermost. Empty
        for an image-link-only scenario (``image_link.points()`` has those)."""
        out: list[SweepPoint] = []
        combos = itertools.product(
            self.model_pairs,
            self.channel_values("mode"),
            self.ue_counts,
            self.rates,
            self.channel_values("snr_db"),
        )
        for i, (pair, mode, n_ues, rate, snr) in enumerate(combos):
            channel = dict(self.channel)
            for key, val in (("mode", mode), ("snr_db", snr)):
                if val is not None:
                    channel[key] = val
            channel["seed"] = self.seed  # the emulator keys its draws by (seed, ue_id, seq)
            out.append(SweepPoint(index=i, models=pair, mode=mode, ues=n_ues, rate=rate,
                                  snr_db=None if snr is None else float(snr), channel=channel))
        return out

    @property
    def output_dir(self) -> Path:
        return Path(self.output) if self.output else Path("runs") / self.name


@dataclass
class SweepPoint:
    """One point of the sweep: everything the runner needs to configure the link for it."""

    index: int
    models: ModelPair
    mode: str | None
    ues: int
    rate: str | int | None
    snr_db: float | None
    channel: dict[str, Any] = field(default_factory=dict)  # LinkConfig fields, scalars, seed set

    def label(self) -> str:
        parts = [self.models.name]
        if self.channel.get("ideal"):
            parts.append("ideal link")
        elif self.mode is not None:
            parts.append(str(self.mode))
        parts.append(f"{self.ues} UE" + ("s" if self.ues != 1 else ""))
        if self.rate is not None:
            parts.append(f"rate {self.rate}")
        if self.snr_db is not None:
            parts.append(f"{self.snr_db:g} dB")
        return ", ".join(parts)


class _FieldError(ValueError):
    """A validation problem at an explicit field path (raised from inside a validator)."""

    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


# --------------------------------------------------------------------------- errors


def _where(loc: tuple[str | int, ...]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


_FRIENDLY = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "none_required": "must be null",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
}


def _format_validation(source: str, exc: ValidationError, allowed: dict[tuple, list[str]],
                       raw: Any = None) -> str:
    """One line per problem: ``<source>: <field path>: <problem>``."""
    by_loc: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = tuple(err["loc"])
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, _FieldError):
            by_loc.setdefault(_where(ctx_err.loc), []).append(ctx_err.msg)
            continue
        # Union members add their type name to the path (e.g. rate.str); drop it.
        loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS)))
        # A swept field given as one value was wrapped in a list: report it without [0].
        if (len(loc) > 1 and loc[1] == 0 and isinstance(raw, dict) and loc[0] in _LISTED
                and not isinstance(raw.get(loc[0]), list)):
            loc = (loc[0], *loc[2:])
        msg = _FRIENDLY.get(err["type"], str(err["msg"]).removeprefix("Value error, "))
        if err["type"] == "extra_forbidden":
            known = allowed.get(tuple(p for p in loc[:-1] if not isinstance(p, int)))
            if known:
                msg += f" (allowed: {', '.join(known)})"
        by_loc.setdefault(_where(loc), []).append(msg)
    lines = []
    for where, msgs in by_loc.items():
        uniq = list(dict.fromkeys(msgs))
        # Several type errors at one place come from a union: say what would be accepted.
        if len(uniq) > 1 and all(m.startswith("must be ") for m in uniq):
            text = "must be " + " or ".join(m.removeprefix("must be ") for m in uniq)
        else:
            text = "; ".join(uniq)
        lines.append(f"{source}: {where}: {text}")
    return "\n".join(lines)


_TYPE_TAGS = {"int", "str", "float", "bool", "none", "ModelPair"}
_LISTED = ("ues", "models", "rate")


def _allowed_fields() -> dict[tuple, list[str]]:
    from csilink.image_runner import ImageSource

    return {
        (): list(Scenario.model_fields),
        ("dataset",): list(DatasetSpec.model_fields),
        ("models",): list(ModelPair.model_fields),
        ("image_link",): list(ImageLinkSection.model_fields),
        ("image_link", "images"): list(ImageSource.model_fields),
    }


# --------------------------------------------------------------------------- loading


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate the structure of a scenario document (no file or bundle look-ups)."""
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: a scenario must be a YAML mapping, got {type(data).__name__}")
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(_format_validation(source, exc, _allowed_fields(), data)) from None
    _validate_extensions(sc, source)
    return sc


def _validate_extensions(sc: Scenario, source: str) -> None:
    known = scenario_extensions()
    parsed: dict[str, Any] = {}
    for name, section in sc.extensions.items():
        model = known.get(name)
        if model is None:
            have = ", ".join(sorted(known)) or "none registered"
            raise InvalidInput(f"{source}: extensions.{name}: unknown extension (known: {have})")
        try:
            parsed[name] = model.model_validate(section if section is not None else {})
        except ValidationError as exc:
            allowed = {(): list(model.model_fields)}
            msg = _format_validation(source, exc, allowed)
            # Re-root the paths under extensions.<name>.
            top = f".{name}.(top level)"
            fixed = [f"{source}: extensions.{name}.{line[len(source) + 2:]}".replace(top, f".{name}")
                     for line in msg.splitlines()]
            raise InvalidInput("\n".join(fixed)) from None
    sc.extensions = parsed


def resolve_path(ref: str, scenario_file: Path | None) -> Path:
    """A relative path is looked up in the current directory, then beside the scenario file."""
    p = Path(ref)
    if p.is_absolute() or p.exists() or scenario_file is None:
        return p
    beside = scenario_file.parent / p
    return beside if beside.exists() else p


@dataclass
class ResolvedScenario:
    """A scenario whose dataset file, bundles and rates were checked on disk.

    ``bundles``: bundle reference -> bundle folder; ``rates``: (UE bundle ref, rate as written)
    -> the bundle's rate name.
    """

    scenario: Scenario
    source: str
    dataset_path: Path | None
    bundles: dict[str, Path]
    rates: dict[tuple[str, str | int | None], str]
    image_link: ResolvedImageLink | None = None

    def points(self) -> Iterator[SweepPoint]:
        yield from self.scenario.points()


def check_scenario(sc: Scenario, source: str = "<scenario>", scenario_file: Path | None = None,
                   bundle_roots: tuple[str | Path, ...] = ("bundles",)) -> ResolvedScenario:
    """Check what the structure cannot: the dataset file and split, the bundles, the rates of
    each UE bundle, and the channel settings of every sweep point against ``LinkConfig``."""
    from shared.bundle import Bundle, resolve

    ds = None
    if sc.dataset is not None:
        ds = resolve_path(sc.dataset.path, scenario_file)
        if not ds.is_file():
            raise InvalidInput(f"{source}: dataset.path: no such file: {sc.dataset.path}")
        _check_split(ds, sc.dataset.split, source)

    bundles: dict[str, Path] = {}
    manifests: dict[str, Any] = {}
    for i, pair in enumerate(sc.model_pairs):
        where = "models" if len(sc.models) == 1 else f"models[{i}]"
        for node, ref in (("ue", pair.ue), ("bs", pair.bs)):
            assert ref is not None
            if ref in bundles:
                continue
            roots = (*bundle_roots, *(() if scenario_file is None else (scenario_file.parent,)))
            try:
                path = resolve(resolve_path(ref, scenario_file) if "/" in ref else ref, roots)
                manifests[ref] = Bundle.load(path).manifest
            except NotFound:
                raise NotFound(f"{source}: {where}.{node}: unknown bundle {ref!r} "
                               f"(not a bundle folder, and no model id under {', '.join(map(str, roots))})"
                               ) from None
            except Exception as exc:  # BundleError etc.: keep its text, add the place
                raise InvalidInput(f"{source}: {where}.{node}: {exc}") from None
            bundles[ref] = path

    rates: dict[tuple[str, str | int | None], str] = {}
    for pair in sc.model_pairs:
        m = manifests[pair.ue]
        for r in sc.rates:
            rates[(pair.ue, r)] = _rate_name(m, r, source)

    for pt in sc.points():
        _check_link_config(pt.channel, source)
    image = None
    if sc.image_link is not None:
        from csilink.image_runner import check_image_link

        image = check_image_link(sc.image_link, source, scenario_file, bundle_roots)
    return ResolvedScenario(sc, source, ds, bundles, rates, image)


def _rate_name(manifest: Any, rate: str | int | None, source: str) -> str:
    names = [r.name for r in manifest.rates]
    if rate is None:
        return names[0]
    for r in manifest.rates:
        if (isinstance(rate, str) and r.name == rate) or (
            isinstance(rate, int) and rate in (r.bits, r.symbols)
        ):
            return r.name
    counts = [r.bits if r.bits is not None else r.symbols for r in manifest.rates]
    raise InvalidInput(f"{source}: rate: bundle {manifest.model_id} has no rate {rate!r} "
                       f"(rates: {', '.join(names)}; sizes: {counts})")


def _check_split(path: Path, split: str, source: str) -> None:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if split not in f or not isinstance(f[split], h5py.Group):
                have = sorted(k for k in f if isinstance(f[k], h5py.Group))
                raise InvalidInput(f"{source}: dataset.split: {path} has no split {split!r} (has {have})")
    except OSError as exc:
        raise InvalidInput(f"{source}: dataset.path: cannot read {path} as HDF5 ({exc})") from None


def _check_link_config(channel: dict[str, Any], source: str) -> Any:
    from channel_emulator.config import LinkConfig

    try:
        return LinkConfig.model_validate(channel)
    except ValidationError as exc:
        allowed = {(): list(LinkConfig.model_fields)}
        msg = _format_validation(source, exc, allowed)
        lines = [f"{source}: channel.{line[len(source) + 2:]}" for line in msg.splitlines()]
        raise InvalidInput("\n".join(lines)) from None


def load_scenario(path: str | Path, check: bool = True) -> ResolvedScenario | Scenario:
    """Read, validate and (``check=True``) resolve a scenario file."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise NotFound(f"no scenario file {source}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source}: not valid YAML ({exc})") from None
    sc = parse_scenario(data, source)
    return check_scenario(sc, source, path) if check else sc
