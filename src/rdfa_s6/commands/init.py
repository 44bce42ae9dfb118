"""``rdfa-s6 init DATA_ROOT --out my.yaml``: write a preset fitted to a dataset, each value with the statistic it
came from (the rules: :mod:`rdfa_s6.config.fit`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..messages import one_line, printable, shown
from ._common import HelpFormatter

DEFAULT_BASE = "demo"


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "init",
        help="write a preset fitted to a dataset (lengths, pyramid, splits, epochs, model size)",
        description="Read DATA_ROOT (annotations.json, features/, and extraction.json when `rdfa-s6 extract` wrote "
        "it) and write a preset that starts from --base and sets what the data decides: the data paths (absolute), "
        "the feature files' naming and C, feat_stride and num_frames (extraction.json, else fitted to the videos' "
        "durations and feature lengths), the number of classes, the train/validation/test splits from the subset "
        "names, max_seq_len from the video lengths, the pyramid levels and regression ranges from the segment "
        "lengths (every training segment longer than one feature step gets a positive point), epochs, warm-up "
        "and EMA from the dataset size, and embed_dim from the number of training segments. Each value carries a "
        "comment naming the statistic; what could not be inferred is printed and written as comments. The file "
        "loads as it is: `rdfa-s6 check-data my.yaml`, `rdfa-s6 train my.yaml --out RUN`.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("data_root", type=Path, metavar="DATA_ROOT",
                        help="dataset folder: DATA_ROOT/annotations.json and DATA_ROOT/features/")
    parser.add_argument("--out", type=Path, required=True, help="the preset file to write (.yaml)")
    parser.add_argument("--base", default=DEFAULT_BASE,
                        help="preset (name or .yaml path) the fitted one starts from; every key init does not fit "
                        "keeps its value (demo: small and fast on a CPU; thumos14: the paper's model)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ..atomic import atomic_write_bytes
    from ..config import load_config
    from ..config.fit import fit_config
    from ..config.fitfile import preset_config, to_yaml, yaml_value
    from ..data.profile import read_profile
    from ..errors import UserError
    from ..outputs import check_outputs
    from ._progress import video_bar

    out: Path = args.out
    if out.suffix not in (".yaml", ".yml"):
        raise UserError(f"--out {shown(out)}: expected a .yaml file name (the loader reads presets by it)")
    root = args.data_root
    check_outputs([(out, "--out", "file")],
                  [(root, "DATA_ROOT"), (root / "annotations.json", "DATA_ROOT"), (root / "features", "DATA_ROOT"),
                   (root / "extraction.json", "DATA_ROOT")])
    base = load_config(args.base)
    base_path = Path(args.base)
    base_name = str(base_path.resolve()) if base_path.suffix in (".yaml", ".yml") else args.base
    profile = read_profile(root, base.data.downsample_rate,
                           progress=video_bar("reading features", not args.no_progress))
    fit = fit_config(profile, base, base_name)
    text = to_yaml(fit, [f"rdfa-s6 init {printable(root)} --base {printable(args.base)}",
                         "every key below was fitted to the data; all others come from the base preset"])
    preset_config(text)  # loads as train will read it, or a ConfigError before anything is written
    atomic_write_bytes(out, text.encode("utf-8"))
    print(one_line(fit.summary[0], limit=10**6))
    width = max(len(k) for k in fit.values)
    for key, value in fit.values.items():
        print(one_line(f"  {key.ljust(width)}  {yaml_value(value)}   ({fit.why[key]})", limit=10**6))
    for item in fit.unknown:
        print(one_line(f"could not infer: {item}", limit=10**6))
    print(f"wrote {printable(out)}; next: rdfa-s6 check-data {printable(out)}, then rdfa-s6 train "
          f"{printable(out)} --out RUN")
    return 0
