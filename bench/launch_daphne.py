"""daphne exactly as `.venv/bin/daphne` runs it, with full garbage collections logged (see
bench.gctrace). Arguments are daphne's: python -m bench.launch_daphne -v 0 -b HOST -p PORT app"""

import sys

from daphne.cli import CommandLineInterface

from bench import gctrace


def main() -> None:
    gctrace.install()
    sys.argv[0] = "daphne"
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
