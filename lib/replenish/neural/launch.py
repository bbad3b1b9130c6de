"""Entry point of a training process: `python -m replenish.neural.launch <request.pkl> <response.pkl>`.

Reads (train_fn, worker, args) written by `trainer.run_in_subprocess`, runs it, writes the result.
"""

from __future__ import annotations

import sys


def main(request: str, response: str) -> int:
    from pyspark import cloudpickle

    with open(request, "rb") as handle:
        train_fn, worker, args = cloudpickle.load(handle)
    result = train_fn(worker, *args)
    with open(response, "wb") as handle:
        cloudpickle.dump(result, handle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
