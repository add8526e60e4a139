"""A small separable classification task: sports vs cooking sentences, train and validation."""

from __future__ import annotations

import json
from pathlib import Path

SPORTS = [
    "The striker scored twice in the final minutes of the match.",
    "Our team won the basketball game in overtime.",
    "The tennis champion served an ace to take the set.",
    "He ran the marathon in under three hours.",
    "The goalkeeper saved a penalty kick.",
    "The cyclists climbed the mountain stage of the race.",
    "She swam four laps to win the relay.",
    "The coach praised the defense after the victory.",
    "The pitcher threw a fastball for the third strike.",
    "Fans cheered as the runner crossed the finish line.",
    "The boxer landed a knockout punch in the tenth round.",
    "The hockey team scored on a power play.",
]
COOKING = [
    "Simmer the tomato sauce with garlic for twenty minutes.",
    "Whisk the eggs and sugar until fluffy.",
    "Bake the bread at two hundred degrees for forty minutes.",
    "Chop the onions and fry them in butter.",
    "Season the soup with salt, pepper and fresh thyme.",
    "Knead the dough until it is smooth and elastic.",
    "Roast the chicken with lemon and rosemary.",
    "Stir the risotto slowly while adding warm stock.",
    "Grill the vegetables and drizzle them with olive oil.",
    "Melt the chocolate over a pan of hot water.",
    "Marinate the beef overnight in soy sauce.",
    "Fold the cream gently into the batter.",
]
N_TRAIN = 8  # per class; the other 4 of each are the validation set


def topic_rows(part: str) -> list[dict[str, str]]:
    pick = slice(None, N_TRAIN) if part == "train" else slice(N_TRAIN, None)
    return [{"text": t, "label": "sports"} for t in SPORTS[pick]] + [
        {"text": t, "label": "cooking"} for t in COOKING[pick]
    ]


def topics_jsonl(path: Path, part: str) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in topic_rows(part)))
    return path
