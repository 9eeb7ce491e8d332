"""Entry point for ``spark-submit``: the ``chc-equity spark`` commands, with the session spark-submit
configured (``--master`` then left out). ``spark-submit .../chc_equity/spark/submit.py run --input ...``"""

from __future__ import annotations

import sys


def main() -> None:
    from chc_equity.cli import _register, app

    _register("spark")
    app(args=["spark", *sys.argv[1:]], prog_name="chc-equity")


if __name__ == "__main__":
    main()
