"""``csilink dataset``: generate, inspect and import CSI datasets (schema csilink-dataset/1).

Heavy imports (torch, sionna, scipy) happen inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import logging

from shared.errors import InvalidInput

log = logging.getLogger("csilink.dataset")

_GEN_EPILOG = """\
examples:
  csilink dataset generate --profile cdl-c-fdd --n-train 100000 --n-val 5000 --n-test 1000 \\
      --seed 0 -o data/generated/cdl-c-fdd.h5
  csilink dataset generate --profile generic --set model=CDL-A --set delay_spread=100e-9 \\
      --set f_ul=1.71e9 -o data/generated/cdl-a.h5
  csilink dataset generate --config my.yaml -o out.h5      # YAML mapping of config fields
  csilink dataset generate --profile cdl-c-fdd --ul-phases shared --ul-array rescaled \\
      -o copy.h5                 # the naive "second CDL at the UL carrier": UL ~ copy of DL

Config fields (--set key=value, or keys of the YAML file): see `csilink dataset profiles -v`.
An interrupted run leaves OUT.partial; running the same command again resumes it.
"""


_RT_EPILOG = """\
examples:
  csilink dataset generate-rt --profile rt-street-image -o data/generated/rt-street-image.h5
  csilink dataset generate-rt --profile rt-street-wireless -o data/generated/rt-street-wireless.h5
  csilink dataset generate-rt --profile rt-street-image --set n_train_image=64 --set render_spp=8 -o small.h5

Cost on one core: ~5 s per image sample (DL + UL solves, one render), ~0.5 s per wireless
sample (16 UEs share a solve). An interrupted run resumes from OUT.partial.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("dataset", help="generate / inspect / import CSI datasets",
                              description="Generate, inspect and import csilink datasets (HDF5).")
    sub = p.add_subparsers(dest="dataset_command", metavar="ACTION")

    g = sub.add_parser("generate", help="generate a dataset with Sionna (TR 38.901)",
                       description="Generate X (DL now), Y (UL at the target instant) and Z (DL at "
                       "the target instant) per sample, write an HDF5 csilink-dataset/1 file.",
                       epilog=_GEN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    g.add_argument("--profile", default="cdl-c-fdd", help="named profile (default cdl-c-fdd); "
                   "see `csilink dataset profiles`")
    g.add_argument("--config", help="YAML file of config fields, applied over the profile")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config field (repeatable), e.g. --set model=CDL-A")
    g.add_argument("--n-train", type=int, help="training samples")
    g.add_argument("--n-val", type=int, help="validation samples")
    g.add_argument("--n-test", type=int, help="test samples")
    g.add_argument("--seed", type=int, help="seed (same seed + config = same contents)")
    g.add_argument("--ul-phases", choices=["independent", "shared"],
                   help="UL ray phases: independent (physical FDD, default) or shared (diagnostic)")
    g.add_argument("--ul-array", choices=["physical", "rescaled"],
                   help="array seen by the UL: physical (the DL's array, default) or rescaled (half a "
                   "UL wavelength, the artefact of a 2nd CDL object at the UL carrier; with "
                   "--ul-phases shared the UL is then a near copy of the DL)")
    g.add_argument("--sf-splits", help="comma list of splits that also store full SF matrices "
                   "(default: test; 'none' for no SF)")
    g.add_argument("--sf-cap", type=int, help="at most this many SF samples per split (default 1000)")
    g.add_argument("--workers", type=int, default=0,
                   help="worker processes (default 0: generate in this process; on a busy 2-core "
                   "machine that is the fastest)")
    g.add_argument("--compress", action="store_true", help="gzip the HDF5 datasets (smaller, slower)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar / progress log lines")
    g.add_argument("-o", "--output", required=True, help="output .h5 path")
    g.set_defaults(func=_generate)

    r = sub.add_parser("generate-rt", help="generate a ray-traced multi-modal world (Sionna RT)",
                       description="Ray-trace a street with Sionna RT: per sample the DL CSI (x_sf) and "
                       "the UL CSI (y_sf) from the same geometry at their carriers, and for image samples "
                       "the BS camera's RGB picture with the UE car in view. Needs LLVM 19 "
                       "(scripts/install_llvm.sh; `make venv` runs it).",
                       epilog=_RT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--profile", default="rt-street-image",
                   help="rt-street-image (camera-paired, UE in view), rt-street-wireless (LOS + NLOS, "
                   "no image) or rt-street-sample")
    r.add_argument("--config", help="YAML file of RtConfig fields, applied over the profile")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one field (repeatable), e.g. --set n_train_image=64")
    r.add_argument("--seed", type=int)
    r.add_argument("--workers", type=int, default=1, help="processes tracing blocks (one per free core)")
    r.add_argument("--threads", type=int, default=1, help="Dr.Jit threads per process (default 1)")
    r.add_argument("--splits", default="train,val,test",
                   help="comma-separated subset of train,val,test to write (same dataset id and sample ids "
                   "as the full file; e.g. `--splits test` for the evaluation split alone)")
    r.add_argument("-o", "--output", required=True)
    r.set_defaults(func=_generate_rt)

    i = sub.add_parser("info", help="print a dataset's config, splits and sizes")
    i.add_argument("file")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=_info)

    c = sub.add_parser("import-cost2100", help="convert the public CsiNet COST2100 .mat files",
                       description="Convert CsiNet's COST2100 .mat files (key HT: rows of flattened "
                       "2x32x32 real AD matrices in [0, 1], offset 0.5) into a csilink dataset "
                       "(x_ad only).",
                       epilog="example: csilink dataset import-cost2100 --train DATA_Htrainin.mat "
                       "--val DATA_Hvalin.mat --test DATA_Htestin.mat -o data/generated/cost2100-in.h5",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--train", help="training .mat (e.g. DATA_Htrainin.mat)")
    c.add_argument("--val", help="validation .mat")
    c.add_argument("--test", help="test .mat")
    c.add_argument("--name", default="cost2100", help="profile name stored in the file")
    c.add_argument("--key", default="HT", help="variable name in the .mat files (default HT)")
    c.add_argument("-o", "--output", required=True)
    c.set_defaults(func=_import_cost2100)

    pr = sub.add_parser("profiles", help="list the named generation profiles")
    pr.add_argument("-v", "--verbose", action="store_true", help="show every config field")
    pr.set_defaults(func=_profiles)

    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def build_config(args: argparse.Namespace):
    """Profile, then YAML, then --set, then the dedicated flags (last wins)."""
    from datagen.profiles import get_profile, load_yaml, parse_assignment

    cfg = get_profile(args.profile)
    if args.config:
        cfg = cfg.replace(**load_yaml(args.config))
    if args.set:
        cfg = cfg.replace(**dict(parse_assignment(s) for s in args.set))
    over = {k: getattr(args, k) for k in ("n_train", "n_val", "n_test", "seed", "ul_phases", "ul_array",
                                      "sf_cap")
            if getattr(args, k) is not None}
    if args.sf_splits is not None:
        over["sf_splits"] = () if args.sf_splits in ("", "none") else tuple(args.sf_splits.split(","))
    return cfg.replace(**over) if over else cfg


def _generate(args: argparse.Namespace) -> int:
    from datagen.generate import generate

    cfg = build_config(args)
    log.info("profile %s, dataset_id %s, splits %s", cfg.profile, cfg.dataset_id, cfg.split_sizes())
    stats = generate(cfg, args.output, progress=not args.no_progress,
                     compression="gzip" if args.compress else None, workers=args.workers)
    print(f"wrote {args.output}: {stats['samples']} samples in {stats['seconds']:.1f} s "
          f"({stats['samples_per_s']:.0f} samples/s, + {stats['setup_seconds']:.1f} s set-up), "
          f"dataset_id {cfg.dataset_id}")
    return 0


def build_rt_config(args: argparse.Namespace):
    from datagen.profiles import load_yaml, parse_assignment
    from datagen.rt.config import RT_PROFILES

    try:
        cfg = RT_PROFILES[args.profile]
    except KeyError:
        known = ", ".join(RT_PROFILES)
        raise InvalidInput(f"unknown ray-traced profile {args.profile!r}; known: {known}") from None
    if args.config:
        cfg = cfg.replace(**load_yaml(args.config))
    if args.set:
        cfg = cfg.replace(**dict(parse_assignment(s) for s in args.set))
    if args.seed is not None:
        cfg = cfg.replace(seed=args.seed)
    return cfg


def _generate_rt(args: argparse.Namespace) -> int:
    from datagen.rt.generate import generate_rt

    cfg = build_rt_config(args)
    log.info("profile %s, dataset_id %s, splits %s", cfg.profile, cfg.dataset_id,
             {s: cfg.sizes(s) for s in ("train", "val", "test")})
    stats = generate_rt(cfg, args.output, workers=args.workers, threads=args.threads,
                        splits=tuple(x.strip() for x in args.splits.split(",") if x.strip()))
    print(f"wrote {args.output}: {stats['samples']} samples in {stats['seconds']:.0f} s "
          f"({stats['samples_per_s']:.2f} samples/s), dataset_id {cfg.dataset_id}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from shared.dataset import open_dataset

    ds = open_dataset(args.file)
    info = ds.info()
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    print(f"{args.file}: {info['schema']}, profile {info['profile']}, dataset_id {info['dataset_id']}")
    print(f"  Nt={info['n_antennas']} Nc={info['n_subcarriers']} taps={info['n_taps']} "
          f"seed={info['seed']} created {info['created']}")
    for name, sp in info["splits"].items():
        fields = ", ".join(f"{k}{list(v)}" for k, v in sp["fields"].items())
        print(f"  {name}: {sp['n']} samples, ids {sp['first_id']}..{sp['last_id']}: {fields}")
    print("  generator: " + json.dumps(info["generator"], sort_keys=True))
    print("  config: " + json.dumps(info["config"], sort_keys=True))
    return 0


def _import_cost2100(args: argparse.Namespace) -> int:
    from datagen.cost2100 import import_cost2100

    files = {s: getattr(args, s) for s in ("train", "val", "test") if getattr(args, s)}
    if not files:
        raise InvalidInput("give at least one of --train/--val/--test")
    path = import_cost2100(files, args.output, name=args.name, key=args.key)
    print(f"wrote {path}")
    return 0


def _profiles(args: argparse.Namespace) -> int:
    from datagen.profiles import PROFILE_HELP, PROFILES

    for name, cfg in PROFILES.items():
        print(f"{name:15s} {PROFILE_HELP.get(name, '')}")
        if args.verbose:
            for k, v in cfg.to_dict().items():
                print(f"    {k} = {v}")
    return 0
