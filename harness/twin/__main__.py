"""``python -m harness.twin serve [options]`` — see :mod:`harness.twin.serve`."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "serve":
        print("usage: python -m harness.twin serve [options]  (try: serve --help)", file=sys.stderr)
        return 2
    from harness.twin.serve import main as serve_main

    return serve_main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
