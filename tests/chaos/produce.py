#!/usr/bin/env python3
"""Writes key:json lines for kcat -P at about RATE per second until STOP_FILE exists; every 20th
record is invalid (temperature out of range) so the dead-letter path is exercised too."""
import os, sys, time
rate, stop_file = int(sys.argv[1]), sys.argv[2]
seq, t0 = 0, time.monotonic()
while not os.path.exists(stop_file):
    due = int((time.monotonic() - t0) * rate)
    while seq < due:
        temp = 999 if seq % 20 == 7 else (seq % 600) / 10.0 - 10
        sys.stdout.write(f'{seq % 16 + 1}:{{"seq":{seq},"sensor_id":{seq % 16 + 1},"temperature":{temp}}}\n')
        seq += 1
    sys.stdout.flush()
    time.sleep(0.02)
print(seq, file=sys.stderr)
