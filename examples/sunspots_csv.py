#!/usr/bin/env python
"""Write statsmodels' yearly sunspots data (1700-2008) as a CSV: ``python examples/sunspots_csv.py sunspots.csv``.

Then: ``python examples/own_series.py --csv sunspots.csv --column SUNACTIVITY --season 11 --horizon 11``.
"""
import sys

from sinlstm_sym.series.sunspots import write_sunspots_csv

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/sunspots_csv.py FILE.csv")
    try:
        print(f"wrote {write_sunspots_csv(sys.argv[1])}")
    except (ImportError, ValueError, TypeError, FileNotFoundError) as err:
        sys.exit(f"sunspots_csv.py: {err}")
