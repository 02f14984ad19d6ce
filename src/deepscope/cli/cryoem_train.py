"""Train a particle-picking U-Net on micrographs with particle coordinates.

Micrographs (MRC, TIFF, JPEG, PNG) are paired with coordinate files
(STAR, BOX, CryoPPP CSV, cryoSPARC .cs) by file stem, downsampled so the
particle is --working-diameter pixels across, and patches are drawn from
them. --target joint also learns CASSPER's protein/ice/background/carbon
regions from --labels, so that picks on ice or carbon are refused.
Validation micrographs (--val) decide early stopping and the pick threshold,
NMS distance and edge margin, stored in RUN_DIR/best.pt. --flip-y HEIGHT
flips coordinates stored upside down (y -> HEIGHT-1-y). Rerunning the same
command resumes an interrupted run (a finished one is left as it is); a
RUN_DIR holding a run with other settings is refused unless --resume.
--init starts from a shipped or trained picker's weights instead of random
ones (fine-tuning on a few micrographs of a new sample): the run takes its
network, width, depth and working diameter, and a joint picker fine-tunes
without --labels (its particle head alone).

Example (EMPIAR-10017, the shipped model's split; coordinates are in the
JPEG frame, CASSPER labels are upside down):

  deepscope cryoem train --micrographs ../shared/data/cryoem/empiar10017/micrographs \\
      --coords ../shared/data/cryoem/empiar10017/particles --diameter 108 \\
      --labels ../shared/data/cryoem/empiar10017/cassper_labels --labels-flip-y \\
      --exclude Falcon_2012_06_12-14_33_35_0 --val Falcon_2012_06_12-17_02_43_0 \\
      --epochs 2 --out runs/cryoem_try
"""

import argparse


def add_args(parser):
    from deepscope.cli.options import add_flip_y_arg
    from deepscope.cli.train_options import add_train_args
    from deepscope.cryoem.train import (DEFAULT_CONFIG, DEFAULT_PATCHES_PER_EPOCH, TARGETS,
                                        WORKING_DIAMETER)

    parser.add_argument("--micrographs", nargs="+", required=True,
                        help="micrograph files or directories (required)")
    parser.add_argument("--coords", required=True,
                        help="directory of particle-centre files named like the micrographs (required)")
    parser.add_argument("--diameter", type=float, required=True,
                        help="particle diameter in micrograph pixels (required)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR",
                        help="run directory: checkpoints, history, config (required)")
    parser.add_argument("--target", choices=list(TARGETS),
                        help="heads to train, each with its network: "
                             + ", ".join(f"{t} {n}" for t, n in TARGETS.items())
                             + " (default: the --arch's, else joint with --labels, else disks)")
    parser.add_argument("--labels", help="directory of CASSPER region label PNGs (default: none)")
    add_flip_y_arg(parser, "the particle coordinates")
    # the older spelling: flip with each micrograph's own height
    parser.add_argument("--coords-flip-y", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--labels-flip-y", action="store_true",
                        help="label images are upside down (default: as stored)")
    parser.add_argument("--exclude", nargs="*", default=[], metavar="STEM",
                        help="micrographs to leave out entirely, your test set (default: none)")
    parser.add_argument("--val", nargs="*", default=None, metavar="STEM",
                        help="validation micrographs (default: a seeded --val-fraction of them)")
    parser.add_argument("--init", metavar="NAME_OR_PATH",
                        help="start from this shipped picker, run directory or checkpoint instead of random weights; "
                             "its network, width, depth and working diameter are the run's (default: random)")
    parser.add_argument("--working-diameter", type=float,
                        help=f"particle size the network sees, in px (default {WORKING_DIAMETER}, or the --init's)")
    parser.add_argument("--width", type=int,
                        help="U-Net channels at full working resolution (default 16, or the --init's)")
    parser.add_argument("--depth", type=int, help="U-Net poolings (default 3, or the --init's)")
    parser.add_argument("--patches", type=int, default=DEFAULT_PATCHES_PER_EPOCH,
                        help=f"training patches per epoch (default {DEFAULT_PATCHES_PER_EPOCH})")
    parser.add_argument("--augment", type=int, choices=[1, 2, 4, 8], default=1,
                        help="test-time views (rotations/flips) averaged when picking; the threshold is tuned "
                             "for them (default 1)")
    parser.add_argument("--enhance", choices=["auto", "on", "off"], default="auto",
                        help="auto (default): decided from the pixels, a light low-pass when they are noisy; "
                             "on: band-pass and histogram equalisation; off: pixels as read")
    add_train_args(parser, DEFAULT_CONFIG)


def main(args):
    import dataclasses
    from pathlib import Path

    from deepscope.cli.train_options import config_from_args, is_primary_process
    from deepscope.core.files import collect_inputs
    from deepscope.cryoem.io import MICROGRAPH_SUFFIXES
    from deepscope.cryoem.train import (WORKING_DIAMETER, default_config, load_initial_picker, resolve_target,
                                        train_picker)
    from deepscope.cli.options import refuse_unknown_arch

    # Before any micrograph is listed or read: a wrong network must cost nothing.
    refuse_unknown_arch(args.arch, "cryoem")
    primary = is_primary_process()
    init = load_initial_picker(args.init) if args.init else None
    # unless given, the network, its shape and the working scale are the --init picker's
    shape = dict(init.shape) if init else {"width": 16, "depth": 3}
    target = resolve_target(args.target, args.arch or (init.model if init else None), args.labels is not None)
    config = config_from_args(args, default_config(target))
    config = dataclasses.replace(config, model_kwargs={
        "width": args.width or shape["width"], "depth": args.depth or shape["depth"], **config.model_kwargs})
    working_diameter = args.working_diameter or (init.working_diameter if init else WORKING_DIAMETER)
    result = train_picker(
        collect_inputs(args.micrographs, MICROGRAPH_SUFFIXES), args.coords, args.diameter, args.out, config,
        target=target, labels_dir=args.labels, coords_flip_y=args.coords_flip_y, flip_height=args.flip_y,
        labels_flip_y=args.labels_flip_y, val_names=args.val, working_diameter=working_diameter,
        patches_per_epoch=args.patches, enhance=args.enhance, resume=args.resume, exclude=args.exclude,
        augment=args.augment, progress=primary, init=init,
    )
    if not primary:
        return
    tuning = result["tuning"]
    print(f"trained on {len(result['train'])} micrographs, validated on {', '.join(result['val'])}")
    print(f"best epoch {result['fit'].best_epoch}: validation F1 {tuning['f1']:.3f} "
          f"at threshold {tuning['threshold']:.2f} (NMS {tuning['nms_fraction']} x diameter)")
    # working px -> micrograph px: what a user can compare with their labels
    dx, dy = (v * args.diameter / working_diameter for v in tuning["centre_offset"])
    print(f"picks sit {dx:+.2f}, {dy:+.2f} px (x, y) from the labels on the seen micrographs; "
          "subtracted from every pick")
    print(f"checkpoint: {Path(args.out) / 'best.pt'}")
