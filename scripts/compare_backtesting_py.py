#!/usr/bin/env python3
"""Compare `signalpost backtest --strategy sma-cross` with backtesting.py's SmaCross on the same data.

Both run SMA(10) against SMA(30) on mid closes of the bundled Lean EURUSD H1 file (74,439 bars), stop and
reverse on every strict cross (backtesting.py's `crossover`), filled at the next bar's open. The script
prints the trade counts, where the trade lists part, and the ratio of the times: backtesting.py's
`Backtest.run()` against our engine run (the `seconds` field of `--json`) and against the whole `signalpost`
process (load + run + output).

Exact touches. Three times in this file the two averages are exactly equal in exact arithmetic (a touch,
not a cross under the strict rule). Float summing noise turns a touch into a cross one way or the other:
pandas' rolling mean does so at two of them, so backtesting.py as in its README counts two trades more than
exact arithmetic does. Our sma-cross treats averages within 1e-12 of each other as equal (see
crates/engine/src/strategies/sma_cross.rs), which is exact arithmetic for quoted prices. So the script
reports three counts besides ours: backtesting.py as in its README, backtesting.py with its SMAs rounded to
10 decimals (which makes exact touches compare equal and changes nothing else), and the count from exact
rational arithmetic. Ours should equal the last two, with a trade list identical to the rounded run's.

backtesting.py is not a dependency of Signalpost and nothing of it is committed. To run this:

    python3 -m venv /tmp/btpy && /tmp/btpy/bin/pip install backtesting
    cargo build --release -p signalpost
    /tmp/btpy/bin/python scripts/compare_backtesting_py.py [--runs 5]

Settings on backtesting.py's side, so the two count the same trades:
- commission 0 and spread 0: costs change P&L, not when crosses happen; trade counts do not depend on them.
- trade_on_close=False: orders fill at the next bar's open, as ours do.
- exclusive_orders=True, and `position.close()` before each `buy()`/`sell()`, as in its README.
- cash 1e9, so it never runs out of money and stops early (we trade a fixed 1 lot on 10,000 USD).
- finalize_trades=True: backtesting.py leaves the position still open at the end out of its statistics
  by default; we close it at the last close (reason end_of_data) and count it, so it must count it too.
- Mid prices are rounded to 6 decimals after (bid + ask) / 2, so each is the double nearest the exact
  decimal mid, as our loader's Decimal mid converted to f64 is; a 1-ulp difference could flip a cross
  that sits exactly on the edge.
"""

import argparse
import csv
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from backtesting import Backtest, Strategy
from backtesting.lib import crossover

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "crates/market/data/lean_oanda_EURUSD_H1_2007-2018.csv.gz"
BINARY = ROOT / "target/release/signalpost"


def load_mid(path: Path) -> pd.DataFrame:
    """The Lean bid/ask file as mid-price OHLC, indexed by the bar's open time."""
    raw = pd.read_csv(path, compression="gzip", dtype={"time": str})
    frame = pd.DataFrame(index=pd.to_datetime(raw["time"], format="%Y%m%d %H:%M"))
    for col in ("open", "high", "low", "close"):
        mid = (raw[f"bid_{col}"].to_numpy() + raw[f"ask_{col}"].to_numpy()) / 2.0
        frame[col.capitalize()] = np.round(mid, 6)
    frame["Volume"] = 0.0
    frame.index.name = None
    return frame


def SMA(values, n):
    """As in backtesting.py's README."""
    return pd.Series(values).rolling(n).mean()


def SMA_EXACT_TIES(values, n):
    """The README's SMA rounded to 10 decimals: averages of 6-decimal mids are equal exactly or differ by
    more than 1e-8, so rounding removes only the summing noise that would break exact ties."""
    return pd.Series(values).rolling(n).mean().round(10)


class SmaCross(Strategy):
    n1 = 10
    n2 = 30

    def init(self):
        close = self.data.Close
        self.sma1 = self.I(SMA, close, self.n1)
        self.sma2 = self.I(SMA, close, self.n2)

    def next(self):
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            self.sell()


class SmaCrossExactTies(SmaCross):
    def init(self):
        close = self.data.Close
        self.sma1 = self.I(SMA_EXACT_TIES, close, self.n1)
        self.sma2 = self.I(SMA_EXACT_TIES, close, self.n2)


def exact_trade_count(path: Path) -> int:
    """Crosses of SMA(10) and SMA(30) of the exact decimal mids, in rational arithmetic; a cross on the
    last bar has no next open and makes no trade."""
    from decimal import Decimal
    from fractions import Fraction

    with gzip.open(path, "rt", newline="") as f:
        mids = [(Fraction(Decimal(r["bid_close"])) + Fraction(Decimal(r["ask_close"]))) / 2
                for r in csv.DictReader(f)]
    prefix = [Fraction(0)]
    for m in mids:
        prefix.append(prefix[-1] + m)
    trades, previous = 0, None
    for j in range(29, len(mids) - 1):
        now = ((prefix[j + 1] - prefix[j - 9]) / 10, (prefix[j + 1] - prefix[j - 29]) / 30)
        (f0, s0), (f1, s1) = previous or now, now
        if (f0 < s0 and f1 > s1) or (s0 < f0 and s1 > f1):
            trades += 1
        previous = now
    return trades


def run_backtesting_py(data: pd.DataFrame, runs: int, strategy=SmaCross):
    times = []
    stats = None
    for _ in range(runs):
        bt = Backtest(
            data,
            strategy,
            cash=1e9,
            commission=0.0,
            spread=0.0,
            trade_on_close=False,
            exclusive_orders=True,
            finalize_trades=True,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            stats = bt.run()
            times.append(time.perf_counter() - started)
    return stats, times


def run_signalpost(runs: int, trades_csv: Path):
    cmd = [
        str(BINARY), "backtest", "--candles", str(DATA), "--symbol", "EURUSD", "--timeframe", "1h",
        "--strategy", "sma-cross", "--json", "--trades-csv", str(trades_csv),
    ]
    env = dict(os.environ, RUST_LOG="warn", RUST_BACKTRACE="0")
    engine_times, process_times = [], []
    report = None
    for _ in range(runs):
        started = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
        process_times.append(time.perf_counter() - started)
        if out.returncode != 0:
            sys.exit(f"signalpost failed ({out.returncode}):\n{out.stderr}")
        report = json.loads(out.stdout)
        engine_times.append(report["seconds"])
    return report, engine_times, process_times


def compare_lists(ours: list, theirs: pd.DataFrame) -> str:
    """Which trades, as (side, entry time), only one side has."""
    their_rows = {
        ("long" if size > 0 else "short", entry.strftime("%Y-%m-%dT%H:%M:%SZ"))
        for size, entry in zip(theirs["Size"], theirs["EntryTime"])
    }
    our_rows = {(row["side"], row["entry_time"]) for row in ours}
    if our_rows == their_rows and len(ours) == len(theirs):
        return "identical (side and entry time of every trade)"
    only_ours, only_theirs = sorted(our_rows - their_rows), sorted(their_rows - our_rows)
    return f"only ours: {only_ours or 'none'}; only theirs: {only_theirs or 'none'}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each side; the medians are reported")
    args = parser.parse_args()
    if not BINARY.exists():
        sys.exit(f"{BINARY} is missing: run `cargo build --release -p signalpost` first")

    data = load_mid(DATA)
    stats, py_times = run_backtesting_py(data, args.runs)
    theirs = stats["_trades"]
    tie_stats, _ = run_backtesting_py(data, 1, SmaCrossExactTies)
    exact = exact_trade_count(DATA)

    with tempfile.TemporaryDirectory() as tmp:
        trades_csv = Path(tmp) / "trades.csv"
        report, engine_times, process_times = run_signalpost(args.runs, trades_csv)
        with open(trades_csv, newline="") as f:
            ours = list(csv.DictReader(f))

    py, eng, proc = statistics.median(py_times), statistics.median(engine_times), statistics.median(process_times)
    version = sys.modules["backtesting"].__version__
    print(f"data: {DATA.name}, {len(data)} bars; times are medians of {args.runs} runs")
    print(f"backtesting.py {version} SmaCross as in its README: {stats['# Trades']} trades, "
          f"Backtest.run() {py * 1000:.1f} ms")
    print(f"backtesting.py, SMAs rounded to 10 decimals (exact ties): {tie_stats['# Trades']} trades")
    print(f"exact rational arithmetic: {exact} trades")
    print(f"signalpost: {report['trades']} trades ({report['closed_at_end']} closed at end of data), "
          f"engine {eng * 1000:.2f} ms, whole process {proc * 1000:.1f} ms")
    print(f"ours vs README backtesting.py: {compare_lists(ours, theirs)}")
    print(f"ours vs exact-ties backtesting.py: {compare_lists(ours, tie_stats['_trades'])}")
    print(f"speed-up: {py / eng:.0f}x against our engine run, {py / proc:.1f}x against our whole process")


if __name__ == "__main__":
    main()
