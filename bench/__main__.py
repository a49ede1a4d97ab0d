"""`python -m bench`: run every benchmark module of this package (bench_*.py) in name order.

A ratio below its target prints MISS but never changes the exit code: benchmarks report, they do
not fail a build. A benchmark that crashes is a bug of ours and ends with its traceback.
"""

import importlib
import pkgutil

import bench


def modules() -> list[str]:
    """Names of the benchmark modules, such as "bench.bench_engine", sorted."""
    return sorted(f"{bench.__name__}.{info.name}" for info in pkgutil.iter_modules(bench.__path__)
                  if info.name.startswith("bench_"))


def main() -> None:
    for name in modules():
        importlib.import_module(name).main()
        print()


if __name__ == "__main__":
    main()
