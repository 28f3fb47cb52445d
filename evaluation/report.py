"""docs/RESULTS.md from every shipped bundle (``bundles/``): one evaluation, one table per task.

Tasks are told apart by what the bundle reconstructs and how it sends it:

* "Digital CSI feedback": target ``x`` (the DL CSI now), bits over an error-free link;
* "Analog JSCC feedback": target ``x``, complex symbols over AWGN at each SNR;
* "Prediction with side information": target ``z`` (DL CSI at the target instant), any payload.

A family adds rows by shipping bundles; nothing here names a family. The headline table sits
between ``<!-- headline:start -->`` and ``<!-- headline:end -->`` so the README can include it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evaluation.harness import DEFAULT_SNRS, Row, evaluate
from evaluation.outputs import payload, plot_rd, write_csv, write_json
from shared.bundle import Bundle, find_bundles
from shared.errors import InvalidInput
from shared.provenance import provenance

GENERATED = Path("data/generated/cdl-c-fdd.h5")
SAMPLE = Path("data/sample/cdl-c-fdd-sample.h5")
HEADLINE_SNR = 10.0


FURTHER = (Path("data/generated/umi-nlos.h5"), Path("data/generated/cost2100-like.h5"),
           Path("data/generated/gscm-outdoor.h5"))


def default_datasets() -> list[Path]:
    """The primary dataset and any further generated ones that are here."""
    return [default_dataset(), *(p for p in FURTHER if p.is_file() and GENERATED.is_file())]


def default_dataset() -> Path:
    """The 100k generated set when it is here, else the committed sample."""
    for p in (GENERATED, SAMPLE):
        if p.is_file():
            return p
    raise InvalidInput(f"no dataset: neither {GENERATED} nor {SAMPLE} exists (give --dataset)")


def task_of(r: Row) -> str:
    if r.target == "z":
        return "Prediction of the future DL CSI (target z)"
    if r.symbols is not None:
        return "Analog JSCC feedback over AWGN (target x)"
    return "Digital CSI feedback over an error-free link (target x)"


def _f(v: float | None, d: int = 2) -> str:
    return "-" if v is None else f"{v:.{d}f}"


def _table(rows: list[Row], with_snr: bool) -> list[str]:
    head = (
        ["model", "family", "payload"]
        + (["SNR (dB)"] if with_snr else [])
        + ["NMSE AD (dB)", "NMSE SF (dB)", "rho", "SGCS"]
    )
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = (
            [f"`{r.model}`", r.family, payload(r)]
            + ([_f(r.snr_db, 0)] if with_snr else [])
            + [_f(r.nmse_db_ad), _f(r.nmse_db_sf), _f(r.rho, 3), _f(r.sgcs, 3)]
        )
        out.append("| " + " | ".join(cells) + " |")
    return out


#: a rate enters the headline only if it beats every cheaper rate of the same model by this much
HEADLINE_MIN_GAIN_DB = 0.1


def headline(rows: list[Row]) -> list[Row]:
    """Per model and kind (digital / analog at ``HEADLINE_SNR``), its rates from the cheapest up,
    keeping a rate only when it is at least ``HEADLINE_MIN_GAIN_DB`` better than every cheaper
    one of the same model: more payload for the same quality says nothing new (every rate is in
    the per-task tables)."""
    cand = [r for r in rows if r.symbols is None or r.snr_db == HEADLINE_SNR]
    groups: dict[tuple[str, bool], list[Row]] = {}
    for r in cand:
        groups.setdefault((r.model, r.symbols is not None), []).append(r)
    out = []
    for g in groups.values():
        best = None
        for r in sorted(g, key=lambda r: (r.bits or 0, r.symbols or 0)):
            if best is None or r.nmse_db_ad < best - HEADLINE_MIN_GAIN_DB:
                out.append(r)
                best = r.nmse_db_ad if best is None else min(best, r.nmse_db_ad)
    return sorted(out, key=lambda r: (r.target, r.symbols is not None, r.bits or 0, r.symbols or 0, r.model))


def budgets(bundles: list[Bundle]) -> list[str]:
    out = [
        "| model | family | dataset | train samples | budget (min) | samples seen | epochs | threads "
        "| seed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for b in bundles:
        t = b.manifest.training
        budget, seen, epochs = t.get("budget_minutes", "-"), t.get("samples_seen", "-"), t.get("epochs", "-")
        base = t.get("init_from")
        if isinstance(base, dict) and isinstance(base.get("budget_minutes"), int | float):
            # a fine-tuning run (e.g. quantization-aware) continuing a base run: count both stages
            budget = f"{base['budget_minutes']:g} + {budget:g}" if isinstance(budget, int | float) else budget
            if isinstance(seen, int) and isinstance(base.get("samples_seen"), int):
                seen = base["samples_seen"] + seen
            if isinstance(epochs, int | float) and isinstance(base.get("epochs"), int | float):
                epochs = round(base["epochs"] + epochs, 2)
        out.append(
            f"| `{b.model_id}` | {b.family} | {t.get('dataset', '-')} (`{t.get('dataset_id', '-')}`) | "
            f"{t.get('n_train', '-')} | {budget} | {seen} | "
            f"{epochs} | {t.get('threads', '-')} | {t.get('seed', '-')} |"
        )
    return out


def render(rows: list[Row], ctx: dict[str, Any], bundles: list[Bundle], plot_rel: str, cmd: str) -> str:
    prov = provenance()
    lines = [
        "# Results",
        "",
        f"Generated by `{cmd}` (do not edit by hand). Every bundle in `{ctx['root']}/` on the "
        f"`{ctx['split']}` split of `{ctx['dataset']}` (dataset id `{ctx['dataset_id']}`), "
        f"first {ctx['n']} samples; "
        f"SF metrics against the stored full spatial-frequency truth on the first {ctx['n_sf']} of them "
        "(the AD metrics include only the 32 kept delay taps; SF NMSE also counts the energy the crop "
        "drops).",
        "",
        "The UE half ran as on the UE node (int8 ONNX Runtime encoder + numpy wire step), the BS half "
        "through `models.registry.load_bs_decoder`; analog reports crossed AWGN in-process "
        f"(seed {ctx['seed']}). Commit `{prov['git_commit']}`, "
        + ", ".join(f"{k} {v}" for k, v in prov["packages"].items() if k in ("torch", "onnxruntime", "numpy"))
        + f", {prov['created']}. Metric definitions: docs/metrics.md.",
        "",
        "## Headline",
        "",
        f"Each model at each of its rates (analog at {HEADLINE_SNR:.0f} dB SNR) that is at least "
        f"{HEADLINE_MIN_GAIN_DB} dB better than its cheaper rates (all rates: the tables below).",
        "",
        "<!-- headline:start -->",
        *_table(headline(rows), with_snr=False),
        "<!-- headline:end -->",
        "",
        f"![rate-distortion]({plot_rel})",
        "",
    ]
    tasks: dict[str, list[Row]] = {}
    for r in rows:
        tasks.setdefault(task_of(r), []).append(r)
    for task in sorted(tasks):
        rs = tasks[task]
        analog = any(r.symbols is not None for r in rs)
        rs = sorted(rs, key=lambda r: (r.family, r.model, -(r.symbols or 0), r.bits or 0, r.snr_db or 0))
        lines += [f"## {task}", "", *_table(rs, with_snr=analog), ""]
    lines += [
        "## Training budgets",
        "",
        "CPU training at a stated budget, minutes of CPU time of one torch thread unless the manifest "
        "says otherwise; \"a + b\": a base run plus a fine-tuning or second-stage run that continued it, "
        "samples and epochs of both (see docs/models.md for the commands); non-learned families have no "
        "budget.",
        "",
        *budgets([b for b in bundles if b.manifest.training]),
        "",
    ]
    lines += [
        "## Timing during this evaluation",
        "",
        "Per report, batches of 1000, 1 thread, on the machine that wrote this page (not a benchmark: "
        "see docs/bench/).",
        "",
        "| model | rate | UE encode (ms) | BS decode (ms) |",
        "|---|---|---|---|",
    ]
    seen = set()
    for r in rows:
        if (r.model, r.rate) in seen:
            continue
        seen.add((r.model, r.rate))
        lines.append(f"| `{r.model}` | {r.rate} | {r.ue_ms_per_report:.3f} | {r.bs_ms_per_report:.3f} |")
    lines.append("")
    return "\n".join(lines)


def _training_id(b: Bundle) -> str | None:
    return (b.manifest.training or {}).get("dataset_id")


def plan_datasets(
    bundles: list[Bundle], datasets: list[Path]
) -> list[tuple[Path, list[Bundle]]]:
    """Which bundles run on which dataset: a learned bundle on the dataset it was trained on
    when that file is among ``datasets`` (by dataset id), else on the first one; bundles
    without training (the Type II reference) on every dataset."""
    from shared.dataset import open_dataset

    ids = []
    for d in datasets:
        with open_dataset(d) as f:
            ids.append(str(f.dataset_id))
    plan: list[tuple[Path, list[Bundle]]] = [(d, []) for d in datasets]
    for b in bundles:
        tid = _training_id(b)
        if not b.manifest.training:
            for _, bs in plan:
                bs.append(b)
        elif tid in ids:
            plan[ids.index(tid)][1].append(b)
        else:
            plan[0][1].append(b)
    return [(d, bs) for d, bs in plan if any(b.manifest.training for b in bs) or d == datasets[0]]


def update_readme(readme: Path, page: str) -> bool:
    """Copy the page's headline block into ``readme`` between the same markers, if it has them."""
    start, end = "<!-- headline:start -->", "<!-- headline:end -->"
    if not readme.is_file():
        return False
    text = readme.read_text()
    if start not in text or end not in text:
        return False
    block = page[page.index(start) : page.index(end) + len(end)]
    new = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    if new != text:
        readme.write_text(new)
    return True


def make_report(
    dataset: str | Path | list[str | Path] | None = None,
    split: str = "test",
    n: int | None = None,
    snrs: tuple[float, ...] = DEFAULT_SNRS,
    root: str | Path = "bundles",
    out: str | Path = "docs/RESULTS.md",
    data_dir: str | Path = "docs/bench",
    seed: int = 0,
    cmd: str = "csilink report",
    readme: str | Path | None = None,
) -> Path:
    """Evaluate every bundle under ``root`` and write ``out`` (+ JSON/CSV/PNG under ``data_dir``).

    ``dataset``: one file or several; the first is the primary one (headline, results.json);
    each further one gets its own section with the bundles trained on it and the non-learned
    references (files ``results-<dataset id>.json`` ...). ``readme``: also copy the headline
    table into that file.
    """

    if isinstance(dataset, list | tuple):
        datasets = [Path(d) for d in dataset]
    else:
        datasets = [Path(dataset) if dataset else default_dataset()]
    paths = find_bundles(root)
    if not paths:
        raise InvalidInput(f"no bundles under {root}")
    snrs = tuple(sorted(set(snrs) | {HEADLINE_SNR}))
    bundles = [Bundle.load(p) for p in paths]
    from evaluation.image_report import image_bundles
    from evaluation.image_report import section as image_section
    from evaluation.sf_report import section as sf_section
    from evaluation.sf_report import sf_bundles

    sf = sf_bundles(bundles)  # the ray-traced world's SF codecs: their own section, own data
    images = image_bundles(bundles)  # the semantic image link: images, not CSI
    bundles = [b for b in bundles if b not in sf and b not in images]
    out = Path(out)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    pages = []
    for i, (ds, group) in enumerate(plan_datasets(bundles, datasets)):
        pages.append(_dataset_page(ds, group, i > 0, split, n, snrs, seed, root, out, data_dir, cmd))
    for extra in (sf_section(sf), image_section(images)):
        if extra:
            pages.append(extra)
    text = "\n".join(pages)
    out.write_text(text)
    if readme is not None:
        update_readme(Path(readme), text)
    return out


def _dataset_page(ds: Path, group: list[Bundle], further: bool, split: str, n: int | None,
                  snrs: tuple[float, ...], seed: int, root: str | Path, out: Path, data_dir: Path,
                  cmd: str) -> str:
    """Evaluate ``group`` on ``ds``; the primary page, or a further dataset's own section."""
    import os

    rows, ctx = evaluate([str(b.path) for b in group], ds, split, n, snrs, seed, roots=(str(root),))
    ctx["root"] = str(root)
    stem = f"results-{ctx['dataset_id']}" if further else "results"
    write_json(rows, ctx, data_dir / f"{stem}.json")
    write_csv(rows, data_dir / f"{stem}.csv")
    png = data_dir / f"{stem}_rd.png"
    plot_rd(rows, png, f"{ctx['dataset_id']} / {split} (n={ctx['n']})")
    page = render(rows, ctx, group, os.path.relpath(png, out.parent), cmd)
    if further:  # its own section, headings one level down
        title = f"## Results on `{ds.name}` (dataset id `{ctx['dataset_id']}`)"
        body = page.split("\n", 1)[1].replace("\n## ", "\n### ").replace("<!-- headline:start -->\n", "")
        page = title + "\n" + body.replace("<!-- headline:end -->\n", "")
    return page


def update_dataset_section(
    dataset: str | Path, split: str = "test", n: int | None = None, snrs: tuple[float, ...] = DEFAULT_SNRS,
    root: str | Path = "bundles", out: str | Path = "docs/RESULTS.md", data_dir: str | Path = "docs/bench",
    seed: int = 0, cmd: str = "csilink report",
) -> Path:
    """Re-evaluate one further dataset's section of ``out`` in place (its bundles and the references),
    leaving the rest of the page as it is; the section is added before the ray-traced and image
    sections if the page has none yet. What ``make_report`` writes for that dataset, without the
    other datasets' files."""
    from shared.dataset import open_dataset

    ds = Path(dataset)
    out, data_dir = Path(out), Path(data_dir)
    with open_dataset(ds) as f:
        did = str(f.dataset_id)
    bundles = [Bundle.load(p) for p in find_bundles(root)]
    group = [b for b in bundles if _training_id(b) == did or not b.manifest.training]
    if not any(b.manifest.training for b in group):
        raise InvalidInput(f"no bundle under {root} was trained on {ds} (dataset id {did})")
    snrs = tuple(sorted(set(snrs) | {HEADLINE_SNR}))
    data_dir.mkdir(parents=True, exist_ok=True)
    page = _dataset_page(ds, group, True, split, n, snrs, seed, root, out, data_dir, cmd)
    text = out.read_text()
    head = f"## Results on `{ds.name}`"
    if head in text:
        start = text.index(head)
        nxt = text.find("\n## ", start + 1)
        text = text[:start] + page.rstrip("\n") + "\n" + ("" if nxt < 0 else text[nxt:])
    else:
        nxt = min((i for i in (text.find("\n## Multi-modal"), text.find("\n## Semantic image")) if i >= 0),
                  default=len(text))
        text = text[:nxt] + "\n" + page.rstrip("\n") + "\n" + text[nxt:]
    out.write_text(text)
    return out


def load_results(path: str | Path = "docs/bench/results.json") -> list[dict[str, Any]]:
    return json.loads(Path(path).read_text())["results"]
