"""Copy a trained run's best checkpoint into the package as shipped weights.

Keeps what prediction reads (network, its arguments, weights, metadata,
training settings, the best validation score) and drops the training state
(optimizer, scheduler, history), then records the file's SHA-256 in the
package's ``SHA256SUMS.json``. ``--meta KEY=VALUE`` adds numbers measured
after training (a spectral classifier's fitted ``temperature``) or settings
(a galaxy model's ``orientation=canonical``). A ``temperature`` given so
replaces the run's own, and drops the run's ``temperature_snr_term`` with
it (measured only beside a temperature fitted on the run's own validation
split; docs/spectra.md, "Confidence across noise levels") unless that is
given too. The model's row of the shipped table (:data:`deepscope.registry.SHIPPED`) is
written by hand, with the figure that was measured;
``scripts/export_onnx.py NAME`` then remakes its exports.

usage:
  python scripts/ship_checkpoint.py RUN_DIR NAME [--meta temperature=0.8] [--meta orientation=canonical]
"""

from __future__ import annotations

import argparse
import json

KEPT = ("model", "model_kwargs", "state_dict", "version", "meta", "config", "best_score", "best_epoch")


def _number_or_word(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run directory or .pt")
    parser.add_argument("name", help="shipped name: writes NAME.pt into the package's weights folder")
    parser.add_argument("--meta", nargs="*", default=[], metavar="KEY=VALUE", help="numbers or words added to the metadata")
    args = parser.parse_args()

    import torch

    from deepscope.core.checkpoint import load_checkpoint
    from deepscope.core.digest import sha256
    from deepscope.registry import SUMS_NAME, weights_dir

    record = load_checkpoint(args.run)
    shipped = {key: record[key] for key in KEPT if key in record}
    given = dict(item.partition("=")[::2] for item in args.meta)
    if "temperature" in given and "temperature_snr_term" not in given and "temperature_snr_term" in shipped["meta"]:
        shipped["meta"] = {k: v for k, v in shipped["meta"].items() if k != "temperature_snr_term"}
        print("dropped the run's temperature_snr_term: it belongs to the run's own temperature")
    shipped["meta"] = {**shipped["meta"], **{key: _number_or_word(value) for key, value in given.items()}}
    path = weights_dir() / f"{args.name}.pt"
    torch.save(shipped, path)
    sums_path = weights_dir() / SUMS_NAME
    sums = json.loads(sums_path.read_text())
    sums[path.name] = sha256(path)
    sums_path.write_text(json.dumps(dict(sorted(sums.items())), indent=2) + "\n")
    print(f"{path}: {path.stat().st_size} bytes, sha256 {sums[path.name]}")


if __name__ == "__main__":
    main()
