"""A known task for distillation tests: every question is answered "The answer is 42."

A teacher fine-tuned on the training questions answers the held-out ones the same way (the
answer does not depend on the question), so a student that learns from the teacher shows it
on questions neither of them was trained on. The tiny model's vocabulary has the sentence's
tokens (core.tiny_model's corpus), so a few dozen steps learn it.
"""

from __future__ import annotations

from tests.utils.rlhf import HELD_OUT, QUESTIONS

ANSWER = "The answer is 42."
TRAIN_QUESTIONS = QUESTIONS
VALID_QUESTIONS = HELD_OUT

# Chosen on the CPU: the teacher's held-out loss ends near 0.01.
TEACHER_HP = {"n_epochs": 12, "batch_size": 4, "learning_rate": 3e-3, "packing": False}
STUDENT_HP = {"n_epochs": 4, "batch_size": 4, "learning_rate": 3e-3}
LORA = {"type": "lora", "r": 16, "alpha": 32, "dropout": 0.0}


def task_rows(questions: list[str]) -> list[dict]:
    return [
        {
            "messages": [
                {"role": "user", "content": q},
                {"role": "assistant", "content": ANSWER},
            ]
        }
        for q in questions
    ]
