"""Print notebook 07's speed table: one LSTM forward plus backward pass, four ways, on the CPU.

    .venv/bin/python benchmarks/bench_lstm_speed.py                # N=64, T=50, D=64, H=128
    .venv/bin/python benchmarks/bench_lstm_speed.py --threads 2 --repeats 21

The implementations are in ``course_utils/speed.py``: notebook 05's NumPy LSTM, a NumPy LSTM
written for speed, notebook 07's PyTorch ``LSTMCell`` called once per step, and ``nn.LSTM``.
Each time is the median of ``--repeats`` runs; the implementations take turns, so that the
ratios are measured in the same run under the same load. This is a script to read, not a timed test.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, default in (("N", 64), ("T", 50), ("D", 64), ("H", 128)):
        parser.add_argument(f"-{name}", type=int, default=default)
    parser.add_argument("--repeats", type=int, default=11, help="timed runs of each implementation")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for NumPy's BLAS and PyTorch (default: the libraries' own choice, "
                             "or OMP_NUM_THREADS when it is set)")
    parser.add_argument("--float64", action="store_true", help="time float64 instead of float32")
    args = parser.parse_args(argv)
    if args.threads is not None:  # must happen before NumPy and PyTorch are imported
        os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)

    import numpy as np
    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from course_utils.lessons.nb07_numpy_to_pytorch.speed import NUMPY_FAST, TORCH_NN, format_speed_table, speed_table

    dtype = np.float64 if args.float64 else np.float32
    print(f"LSTM forward + backward, N={args.N}, T={args.T}, D={args.D}, H={args.H}, {np.dtype(dtype).name}, "
          f"median of {args.repeats} runs")
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible; "
          f"PyTorch {torch.__version__} with {torch.get_num_threads()} threads; NumPy {np.__version__}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    seconds = speed_table(args.N, args.T, args.D, args.H, repeats=args.repeats, warmup=2, dtype=dtype)
    print()
    print(format_speed_table(seconds))
    ratio = seconds[NUMPY_FAST] / seconds[TORCH_NN]
    print()
    print(f"The fast NumPy LSTM takes {ratio:.2f} times as long as nn.LSTM on this machine.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
