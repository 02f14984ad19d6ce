"""Run the shipped models on bundled samples and write DIR/report.html.

Needs nothing but the installed package: no network, no ../shared data.

example:
  deepscope demo --out demo_out
"""


def add_args(parser):
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory for report.html")


def main(args):
    from deepscope.demo import run_demo

    print(run_demo(args.out))
