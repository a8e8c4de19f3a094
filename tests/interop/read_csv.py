"""Read CSV files with Python's csv module; print one JSON object per file:
{"file": name, "rows": [[field, ...], ...], "timestamps_parse": bool}."""
import csv
import json
import sys
from datetime import datetime

for path in sys.argv[1:]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    ok = True
    for r in rows[1:]:
        try:
            datetime.fromisoformat(r[0])
        except (ValueError, IndexError):
            ok = False
    print(json.dumps({"file": path, "rows": rows, "timestamps_parse": ok}))
