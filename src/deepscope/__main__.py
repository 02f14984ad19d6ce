"""Entry point for ``python -m deepscope`` (and ``torchrun -m deepscope``)."""

from deepscope.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
