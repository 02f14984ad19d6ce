"""List the registered networks and the trained weights that ship with deepscope.

Networks are what `<domain> train --arch` accepts; shipped weights are what
every `--model NAME` accepts (a run directory or a .pt file works too).
Each shipped model is listed with what it was trained on, its measured
held-out figure and what runs it on the CPU; its file is checked against
the recorded SHA-256.

example:
  deepscope models
  deepscope models --domain spectra
"""


# What DEEPSCOPE_ENGINE=auto runs for an entry's cpu_engine (deepscope.core.onnx_engine).
_ENGINE_WORDS = {"onnx": "its fp32 ONNX export (torch's answers)",
                 "onnx-int8": "its int8 ONNX export (faster; DEEPSCOPE_ENGINE=onnx for the fp32 answers)"}


def add_args(parser):
    parser.add_argument("--domain", choices=["galaxy", "spectra", "cryoem"],
                        help="only this pipeline's networks and weights (default: all three)")


def main(args):
    from deepscope.registry import DOMAINS, list_models, list_weights

    for domain in [args.domain] if args.domain else DOMAINS:
        print(f"{domain}")
        print(f"  networks (train --arch): {', '.join(list_models(domain, trainable=True))}")
        for entry in list_weights(domain):
            default = "  [default]" if entry.default else ""
            print(f"  {entry.name}{default}")
            print(f"    network:    {entry.arch}")
            print(f"    file:       weights/{entry.file} (SHA-256 {(entry.sha256 or 'not recorded')[:16]}...)")
            print(f"    trained on: {entry.trained_on}")
            print(f"    measured:   {entry.figure}")
            print(f"    on the CPU: {_ENGINE_WORDS[entry.cpu_engine]}")
