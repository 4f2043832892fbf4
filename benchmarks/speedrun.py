"""The MNIST speed run, cold and warm: ``jaxnn speedrun`` twice in fresh processes sharing a new
persistent-compilation-cache directory, so the first run compiles and the second reads the cache.

    python benchmarks/speedrun.py [--seeds 5] [--json PATH] [-- extra jaxnn speedrun flags]

Prints a Markdown table (mean test accuracy, median training seconds, compilation seconds,
total seconds to the first accuracy, and the process's wall-clock seconds including Python
start-up and ``import jax``) and writes it to ``--json`` (benchmarks/results/speedrun.json),
after each of the two runs, so a run cut short keeps the cold run's figures. The targets (training
< 0.5 s, total < 5 s, mean accuracy >= 99.0%) are for one GPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, environment, markdown_table, script_parser, write_json  # noqa: E402


def one_run(cache: Path, seeds: int, extra: list[str], out: Path) -> dict:
    cmd = [sys.executable, "-m", "jaxnn", "speedrun", "--seeds", str(seeds),
           "--cache-dir", str(cache), "--json", str(out), *extra]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - start
    return {**json.loads(out.read_text()), "process_seconds": wall, "command": " ".join(cmd[2:])}


def main(argv=None) -> dict:
    parser = script_parser(__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=RESULTS / "speedrun.json")
    parser.add_argument("extra", nargs="*", help="flags passed on to jaxnn speedrun (after --)")
    args = parser.parse_args(argv)
    rows, runs = [], {}
    payload = {"runs": runs}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "jax-cache"
        for name in ("cold cache", "warm cache"):
            r = one_run(cache, args.seeds, args.extra, Path(tmp) / f"{name[:4]}.json")
            runs[name] = r
            rows.append([name, f"{100 * r['mean_test_accuracy']:.2f}",
                         f"{100 * r['std_test_accuracy']:.2f}",
                         f"{r['median_train_seconds']:.3f}", f"{r['compile_seconds']:.2f}",
                         f"{r['total_seconds']:.2f}", f"{r['process_seconds']:.2f}"])
            write_json(args.json, payload)
    table = markdown_table(["run", "mean test acc. (%)", "std", "training (s, median)",
                            "compilation (s)", "total to 1st accuracy (s)", "process (s)"], rows)
    print(table)
    # only now: environment() starts this process's JAX backend, which on a GPU would reserve
    # most of its memory while the timed runs above need it
    payload.update(environment=environment(), table=table)
    print(f"wrote {write_json(args.json, payload)}")
    return payload


if __name__ == "__main__":
    main()
