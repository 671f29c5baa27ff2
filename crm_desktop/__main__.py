"""Entry point of `crm-desktop`."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    import multiprocessing

    # A frozen desk's decoding processes (core/sync.py) start as this executable: they must run their job and end
    # here, before anything of the desk starts. A no-op when not frozen.
    multiprocessing.freeze_support()
    from crm_desktop.ui.app import run

    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
