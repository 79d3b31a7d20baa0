"""Start the bare benchmark app through OpenCIC's own granian runner (``serve``'s settings).

    python bench/serve.py bare --port P --data-dir D

``opencic.server.runner`` builds the granian server (HTTP/2, backpressure, one worker,
HTTP/2 keep-alive, h2c here); only the app factory it hands to granian is swapped, so the
bare ceiling runs with exactly the server settings of ``opencic
serve``. granian imports the factory by name in its worker, hence ``bench/`` must be on
``PYTHONPATH`` (``run.py`` sets it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FACTORIES = {"bare": "bare_app:create_app"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app", choices=sorted(FACTORIES))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()

    from opencic.config import load_settings
    from opencic.server import runner

    if not isinstance(getattr(runner, "APP_FACTORY", None), str):
        print(
            "bench: opencic.server.runner.APP_FACTORY is gone; update bench/serve.py",
            file=sys.stderr,
        )
        return 2
    runner.APP_FACTORY = FACTORIES[args.app]
    settings = load_settings(
        overrides={
            "host": "127.0.0.1",
            "port": args.port,
            "data_dir": args.data_dir,
            "h2c": True,
            "server": "granian",
        }
    )
    runner.serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
