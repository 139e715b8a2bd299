#!/usr/bin/env python3
"""Compares every committed row (archives, committed parts, committed dead letters) with the
stream Kafka holds (kcat's read-back, one JSON value per line); rows whose record the broker no
longer holds (retention) are counted apart. Prints the figures as JSON;
exit 1 when a record is missing or duplicated."""
import collections, csv, glob, json, os, re, sys
work, readback = sys.argv[1], sys.argv[2]
expected = collections.Counter()
for line in open(readback):
    line = line.strip()
    if line:
        expected[json.loads(line)["seq"]] += 1
got = collections.Counter()
def committed(part):  # a part counts once its manifest entry exists
    d = os.path.dirname(part)
    return os.path.exists(os.path.join(d, "_checkpoint", "commits", os.path.basename(part)[:-4] + ".json"))
for f in glob.glob(f"{work}/out/backup/*.csv"):
    with open(f, newline="") as fh:
        r = csv.DictReader(fh)
        for row in r:
            got[int(row["seq"])] += 1
for f in glob.glob(f"{work}/out/parts/*.csv"):
    if committed(f):
        with open(f, newline="") as fh:
            for row in csv.DictReader(fh):
                got[int(row["seq"])] += 1
for f in glob.glob(f"{work}/out/dead-letter/*.csv"):
    if committed(f):
        with open(f, newline="") as fh:
            for row in csv.DictReader(fh):
                got[int(re.search(r'"seq":(\d+)', row["raw"]).group(1))] += 1
missing = sum(max(n - got[k], 0) for k, n in expected.items())
# Every generated seq is unique, so a seq written more often than Kafka holds it (at least once:
# the mock cluster drops a partition's oldest data beyond 5 MiB) is a duplicate.
duplicated = sum(max(n - max(expected[k], 1), 0) for k, n in got.items())
aged_out = sum(1 for k in got if expected[k] == 0)
print(json.dumps({"produced": sum(expected.values()), "committed_rows": sum(got.values()),
                  "missing": missing, "duplicated": duplicated, "rows_beyond_retention": aged_out}))
sys.exit(1 if missing or duplicated else 0)
