"""List the trainable networks and the trained weights that ship with deepscope.

Networks are what `<domain> train --arch` accepts; shipped weights are what
every `--model NAME` accepts (a run directory or a .pt file works too).
Each shipped model is listed with what it was trained on, its measured
held-out figure, its ONNX exports and what `--engine auto` runs on the CPU.
`deepscope doctor` checks the files against their SHA-256 sums.

example:
  deepscope models
  deepscope models --domain spectra
"""

# What --engine auto runs on the CPU, for a row's cpu_engine.
_ENGINE_WORDS = {"torch": "torch",
                 "onnx": "its fp32 ONNX export (torch's answers)",
                 "onnx-int8": "its int8 ONNX export (faster; --engine onnx for torch's answers)"}


def add_args(parser):
    parser.add_argument("--domain", choices=["galaxy", "spectra", "cryoem"],
                        help="only this pipeline's networks and weights (default: all three)")


def main(args):
    from deepscope.cli.options import TRAINABLE_NETWORKS
    from deepscope.registry import DOMAINS, list_weights

    for domain in [args.domain] if args.domain else DOMAINS:
        print(f"{domain}")
        print(f"  networks (train --arch): {', '.join(TRAINABLE_NETWORKS[domain])}")
        for entry in list_weights(domain):
            default = "  [default]" if entry.default else ""
            exports = ", ".join(path.name for path in entry.export_paths) or "none"
            print(f"  {entry.name}{default}")
            print(f"    network:    {entry.arch}")
            print(f"    file:       weights/{entry.file} (SHA-256 {(entry.sha256 or 'not recorded')[:16]}...)")
            print(f"    exports:    {exports}")
            print(f"    trained on: {entry.trained_on}")
            print(f"    measured:   {entry.figure}")
            print(f"    on the CPU: {_ENGINE_WORDS[entry.cpu_engine]}")
