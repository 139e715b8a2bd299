#!/usr/bin/python3
# Plain Python baseline: confluent-kafka consumer -> json.loads -> csv.writer, to the topic's end.
import csv, json, sys
from confluent_kafka import Consumer, KafkaError

bootstrap, topic, out_path = sys.argv[1:4]
group = sys.argv[4] if len(sys.argv) > 4 else "py-bench"
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
              "enable.partition.eof": True, "enable.auto.commit": False})
c.subscribe([topic])
eof, assigned, rows = set(), None, 0
with open(out_path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["sensor_id", "temperature", "humidity", "timestamp"])
    while True:
        msgs = c.consume(1000, 1.0)
        if assigned is None and c.assignment():
            assigned = {(p.topic, p.partition) for p in c.assignment()}
        for m in msgs:
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add((m.topic(), m.partition()))
                continue
            eof.discard((m.topic(), m.partition()))
            try:
                r = json.loads(m.value())
                w.writerow([r["sensor_id"], r["temperature"], r["humidity"], r["timestamp"]])
                rows += 1
            except (ValueError, KeyError):
                pass
        if assigned and eof >= assigned:
            break
c.close()
print(rows, file=sys.stderr)
