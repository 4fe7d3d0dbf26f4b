"""Load ../shared/data into a database, plus suffixed copies, so a 2,000-symbol job has real bars.

python -m bench.prepare_data [--copies 4]     (uses DATABASE_URL / MARKET_DATA_URL)
"""

from __future__ import annotations

import argparse
import csv
import gzip
import tempfile
from pathlib import Path

from db.loader import load_prices_csv, load_stocks_csv
from db.migrate import upgrade_to_head
from db.session import make_engine, session_scope
from settings import PROJECT_ROOT, Settings

SHARED = PROJECT_ROOT.parent / "shared" / "data"


def suffixed(source: Path, target: Path, suffix: str, since: str) -> None:
    with gzip.open(source, "rt", newline="") as src, open(target, "w", newline="") as dst:
        reader, writer = csv.reader(src), csv.writer(dst, lineterminator="\n")
        writer.writerow(next(reader))
        for row in reader:
            if row[1] >= since:
                writer.writerow([row[0] + suffix, *row[1:]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=4, help="suffixed copies (.B1 ...)")
    parser.add_argument("--since", default="2016-06-01", help="first date loaded")
    args = parser.parse_args()
    url = Settings.from_env().market_data_url_or_default
    upgrade_to_head(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        load_stocks_csv(SHARED / "stocks.csv", session=session)
    with tempfile.TemporaryDirectory() as tmp:
        for copy in range(args.copies + 1):
            suffix = f".B{copy}" if copy else ""
            path = Path(tmp) / f"prices{suffix}.csv"
            suffixed(SHARED / "prices.csv.gz", path, suffix, args.since)
            with session_scope(engine) as session:
                report = load_prices_csv(path, session=session)
            print(
                f"loaded copy {suffix or '(original)'}: {report.loaded} rows, "
                f"{report.unchanged} unchanged"
            )
    engine.dispose()


if __name__ == "__main__":
    main()
