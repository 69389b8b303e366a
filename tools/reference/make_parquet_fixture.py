"""Writes tests/fixtures/hub_squad/plain_text/validation-00000-of-00001.parquet.

A tiny stand-in for the hub dataset rajpurkar/squad, with the same schema
(id, title, context, question, answers{text[], answer_start[]}) and snappy
compression, as the `datasets` library writes it. All records are invented.
Run from the repository root: python3 tools/reference/make_parquet_fixture.py
"""

import pyarrow as pa
import pyarrow.parquet as pq

CONTEXT_A = "The Rhine flows through Basel, Strasbourg and Cologne before reaching Rotterdam."
CONTEXT_B = "Zoë Müller founded the café in 1987; it serves crêpes and coffee."

ROWS = [
    ("q1", "Rhine", CONTEXT_A, "Which city does the Rhine reach last?", ["Rotterdam"], [70]),
    ("q2", "Rhine", CONTEXT_A, "  Name a city the Rhine flows through. ", ["Basel", "Strasbourg"], [24, 31]),
    ("q3", "Café", CONTEXT_B, "Who founded the café?", ["Zoë Müller"], [0]),
    ("q4", "Café", CONTEXT_B, "When was the café founded?", ["1987", "in 1987"], [31, 28]),
]

schema = pa.schema(
    [
        ("id", pa.string()),
        ("title", pa.string()),
        ("context", pa.string()),
        ("question", pa.string()),
        ("answers", pa.struct([("text", pa.list_(pa.string())), ("answer_start", pa.list_(pa.int32()))])),
    ]
)

for _, _, context, _, texts, starts in ROWS:
    for text, start in zip(texts, starts):
        assert context[start : start + len(text)] == text, (text, start)

table = pa.table(
    {
        "id": [r[0] for r in ROWS],
        "title": [r[1] for r in ROWS],
        "context": [r[2] for r in ROWS],
        "question": [r[3] for r in ROWS],
        "answers": [{"text": r[4], "answer_start": r[5]} for r in ROWS],
    },
    schema=schema,
)
pq.write_table(table, "tests/fixtures/hub_squad/plain_text/validation-00000-of-00001.parquet", compression="snappy")
print("wrote", len(ROWS), "rows")
