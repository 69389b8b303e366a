"""Writes tests/fixtures/hub_squad_v2/squad_v2/validation-00000-of-00001.parquet.

A stand-in for the hub dataset rajpurkar/squad_v2 in its own layout: the
first 40 questions of the official dev-v2.0.json (CC BY-SA 4.0, Rajpurkar et
al. 2018), with the hub's schema (id, title, context, question,
answers{text[], answer_start[]}; no is_impossible column, so an unanswerable
question has empty lists) and snappy compression, as `datasets` writes it.
Run from the repository root:
    python3 tools/reference/make_squad2_parquet_fixture.py [SQUAD2_DIR]
"""

import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

QUESTIONS = 40
src = sys.argv[1] if len(sys.argv) > 1 else os.path.join("..", "shared", "data", "squad2")
with open(os.path.join(src, "dev-v2.0.json"), encoding="utf-8") as f:
    data = json.load(f)["data"]

rows = []
for article in data:
    for paragraph in article["paragraphs"]:
        for qa in paragraph["qas"]:
            rows.append((qa["id"], article["title"], paragraph["context"], qa["question"],
                         [a["text"] for a in qa["answers"]], [a["answer_start"] for a in qa["answers"]]))
rows = rows[:QUESTIONS]

schema = pa.schema([
    ("id", pa.string()),
    ("title", pa.string()),
    ("context", pa.string()),
    ("question", pa.string()),
    ("answers", pa.struct([("text", pa.list_(pa.string())), ("answer_start", pa.list_(pa.int32()))])),
])
table = pa.table({
    "id": [r[0] for r in rows],
    "title": [r[1] for r in rows],
    "context": [r[2] for r in rows],
    "question": [r[3] for r in rows],
    "answers": [{"text": r[4], "answer_start": r[5]} for r in rows],
}, schema=schema)
out = os.path.join("tests", "fixtures", "hub_squad_v2", "squad_v2")
os.makedirs(out, exist_ok=True)
pq.write_table(table, os.path.join(out, "validation-00000-of-00001.parquet"), compression="snappy")
print(len(rows), "questions,", sum(1 for r in rows if not r[4]), "unanswerable")
