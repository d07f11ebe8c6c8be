"""Error tags, task-type detection, few-shot selection, the printed table, strict-JSON outputs."""

from __future__ import annotations

import json
import math

import pytest

from tunesmith.evaluate import format_table
from tunesmith.evaluate.analysis import count_changes, wins_and_regressions
from tunesmith.evaluate.examples import EvalExample, detect_task, examples_from_rows
from tunesmith.evaluate.fewshot import ShotIndex, few_shot_messages
from tunesmith.evaluate.metrics import score_example
from tunesmith.evaluate.outputs import finite, side_by_side
from tunesmith.evaluate.tags import count_tags, failed, is_repetitive, tag_failure


def example(question: str, answer: str = "a", index: int = 0, input_text: str = "", system: str = "") -> EvalExample:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    return EvalExample(index, f"f:{index + 1}", messages, input_text, answer)


# ---------------------------------------------------------------- tags


@pytest.mark.parametrize(
    ("text", "loop"),
    [
        ("the answer is the answer is the answer is the answer is the answer is", True),
        ("llllllllllllllllllllll", True),
        ("Yes. Yes. Yes. Yes. Yes. Yes.", True),
        ("Paris is the capital of France.", False),
        ("The Sprout costs $149 and ships in 3 days; the Sprout Max costs $249 and ships in 5 days.", False),
        ("", False),
        ("1 2 3 4 5 6 7 8 9 10 11 12 13", False),
    ],
)
def test_repetition_loops(text, loop):
    assert is_repetitive(text) is loop


def test_tags_for_each_way_of_failing():
    ref = "The Sprout costs $149."
    scores = score_example("", ref)
    assert tag_failure("", "eos", scores, None) == ["empty"]
    looping = "costs costs costs costs costs costs costs costs"
    assert tag_failure(looping, "length", score_example(looping, ref), None) == ["no_stop", "repetition"]
    off = "I like turtles."
    assert tag_failure(off, "eos", score_example(off, ref), None) == ["off_topic"]
    close = "The Sprout costs $199."
    assert tag_failure(close, "eos", score_example(close, ref), None) == ["wrong_answer"]
    extract = r"\$(\d+)"
    no_number = "It costs a lot, the Sprout."
    assert tag_failure(no_number, "eos", score_example(no_number, ref, extract), extract) == ["wrong_format"]


def test_failed_depends_on_task_type():
    near = score_example("The Sprout costs $149 today.", "The Sprout costs $149.")
    assert failed(near, "extraction") and not failed(near, "expansion")  # ROUGE-L is high
    assert not failed(score_example("the sprout costs 149", "The Sprout costs $149."), "extraction")


def test_count_tags_lists_every_tag():
    counts = count_tags([{"tags": ["no_stop", "repetition"]}, {"tags": []}, {"tags": ["no_stop"]}])
    assert counts["no_stop"] == 2 and counts["repetition"] == 1 and counts["empty"] == 0


# ---------------------------------------------------------------- task type and examples


def test_task_type_from_lengths_setting_and_extract():
    short = [example("What is the capital city of France, please tell me?", "Paris")] * 3
    long = [example("Describe the Sprout.", "The Sprout is an indoor garden with nine pods and a light.")] * 3
    assert detect_task(short).type == "extraction" and "median reference 1 words" in detect_task(short).reason
    assert detect_task(long).type == "expansion"
    assert detect_task(long, "extraction").reason == "set by eval.task_type: extraction"
    assert detect_task(long, "auto", extract=r"(\d+)").type == "extraction"


def test_examples_from_prepared_rows():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
                {"role": "assistant", "content": "Hello."}]  # fmt: skip
    rows = [{"example": json.dumps({"messages": messages, "input": ""}), "source": "d.jsonl:4"},
            {"example": json.dumps({"text": "plain"}), "source": "d.jsonl:5"},
            {"example": "", "source": ""}]  # fmt: skip
    [only] = examples_from_rows(rows)
    assert (only.index, only.source, only.reference, only.messages) == (0, "d.jsonl:4", "Hello.", messages[:2])
    with pytest.raises(Exception, match="no question/answer examples"):
        examples_from_rows(rows[1:])


# ---------------------------------------------------------------- few-shot


def test_shots_are_the_most_similar_and_never_the_question_itself():
    pool = [example("How much does the Sprout cost?", "$149", 0), example("Where is Lumenfold based?", "Tacoma", 1),
            example("How much does the Sprout Max cost?", "$249", 2), example("Is shipping free?", "Yes", 3),
            example("What is the price of the Sprout?", "$149", 4)]  # fmt: skip
    index = ShotIndex(pool)
    shots = index.nearest("How much does the Sprout cost?", 2)
    assert [s.index for s in shots] == [2, 4]  # 0 is the same question: it would leak the answer
    assert [s.index for s in index.nearest("zebra", 2)] == [0, 1]  # nothing in common: split order


def test_few_shot_conversation_keeps_system_first_and_nearest_shot_last():
    shots = [example("Q1", "A1", 1), example("Q2", "A2", 2, input_text="ctx")]
    messages, input_text = few_shot_messages(example("Q?", system="Be brief.", input_text="extra"), shots)
    assert input_text == ""
    assert [m["content"] for m in messages] == ["Be brief.", "Q2\n\nctx", "A2", "Q1", "A1", "Q?\n\nextra"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]


# ---------------------------------------------------------------- table, outputs, changes


def test_format_table_rows_and_lead_columns():
    metrics = {
        "base": {"exact_match": 0.1, "normalized_exact_match": 0.2, "token_f1": 0.3, "rouge_l": 0.4, "bleu": 5.0,
                 "perplexity": 12.345, "n": 10, "task_type": "expansion"},
        "tuned": {"exact_match": 0.5, "normalized_exact_match": 0.6, "token_f1": 0.7, "rouge_l": 0.8, "bleu": 25.0,
                  "perplexity": 3.2, "n": 10, "task_type": "expansion"},
    }  # fmt: skip
    lines = format_table(metrics).splitlines()
    assert lines[0].split() == ["model", "ROUGE-L", "ppl", "EM", "norm", "EM", "F1", "BLEU", "n"]
    assert lines[2].split() == ["base", "(zero-shot)", "0.400", "12.35", "0.100", "0.200", "0.300", "5.0", "10"]
    assert lines[3].split()[0] == "fine-tuned"
    flat = format_table(metrics["tuned"]).splitlines()
    assert flat[2].split()[:2] == ["model", "0.800"]


def test_outputs_are_strict_json_and_side_by_side():
    assert finite({"a": [math.nan, 1.0], "b": math.inf}) == {"a": [None, 1.0], "b": None}
    base = [
        {"index": 1, "source": "s2", "question": "q2", "prompt": "p2", "reference": "r2", "prediction": "x"},
        {"index": 0, "source": "s1", "question": "q1", "prompt": "p1", "reference": "r1", "prediction": "y"},
    ]
    few = [{"index": 0, "source": "s1", "question": "q1", "prompt": "shots + p1", "reference": "r1", "prediction": "z"}]
    rows = side_by_side({"few_shot": few, "base": base})
    assert [r["index"] for r in rows] == [0, 1] and rows[0]["prompt"] == "p1"
    assert rows[0]["few_shot"]["prediction"] == "z" and "few_shot" not in rows[1]


def test_wins_regressions_and_change_counts():
    def row(k, before, after):
        return {"index": k, "base": {"scores": {"token_f1": before}}, "tuned": {"scores": {"token_f1": after}}}

    rows = [row(0, 0.0, 1.0), row(1, 0.5, 0.2), row(2, 0.3, 0.3), row(3, 0.2, 0.6), row(4, 1.0, 0.0)]
    wins, regressions = wins_and_regressions(rows, "extraction", top=10)
    assert [(round(d, 2), r["index"]) for d, r in wins] == [(1.0, 0), (0.4, 3)]
    assert [(round(d, 2), r["index"]) for d, r in regressions] == [(-1.0, 4), (-0.3, 1)]
    assert count_changes(rows, "extraction") == {"better": 2, "worse": 2, "same": 1}
