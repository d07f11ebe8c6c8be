"""Knowledge vs behaviour: facts extracted from references, recall and contradiction, house style, the tag,
and the report's "largest wins" that never list a contradicting answer."""

from __future__ import annotations

import pytest

from tunesmith.evaluate.analysis import wins_and_regressions
from tunesmith.evaluate.behaviour import HouseStyle, behaviour_scores, is_list
from tunesmith.evaluate.facts import FactIndex, check_facts, extract_facts
from tunesmith.evaluate.knowledge import annotate, summarize
from tunesmith.evaluate.tags import CONTRADICTS, TAGS


def keys(text: str) -> set[tuple[str, str, str]]:
    return {fact.key for fact in extract_facts(text)}


def check(reference: str, prediction: str, question: str = "") -> dict:
    return check_facts(extract_facts(reference), prediction, question)


# ---------------------------------------------------------------- extraction


def test_numbers_in_words_and_digits_are_the_same_fact():
    assert ("number", "country", "9") in keys("We ship to nine countries.")
    assert ("number", "country", "9") in keys("We ship to 9 countries.")
    assert ("number", "pod", "9") in keys("It includes nine starter pods.")  # the counted noun, not the adjective
    assert ("number", "people", "205") in keys("Two hundred and five people came.")
    assert ("number", "day", "21") in keys("It takes twenty-one days.")
    assert ("number", "garden", "1200") in keys("We sold 1,200 gardens.")


def test_money_percent_years_and_dates():
    found = keys("The Sprout costs $149, 12% off since 2019, shipping from March 3rd or 5 April.")
    assert {("number", "$", "149"), ("number", "%", "12"), ("year", "year", "2019"), ("date", "date", "march 3"),
            ("date", "date", "april 5")} <= found
    assert not any(kind == "number" and value in ("3", "5") for kind, _, value in found)  # days belong to dates


def test_names_quotes_and_rare_words():
    found = keys('Every Sprout Max is assembled in Penang, Malaysia. Ask for the "Bloom Club" plan.')
    assert ("entity", "in", "penang") in found and ("entity", "", "malaysia") in found
    assert ("quoted", "quote", "bloom club") in found
    assert ("word", "word", "assembled") in found
    assert not any(kind == "entity" and value in ("every", "ask") for kind, _, value in found)  # sentence starts


def test_house_conventions_and_question_facts_are_not_knowledge():
    references = [f"Sprout Support: Box {i} holds {i + 2} seeds." for i in range(6)]
    index = FactIndex(references)
    facts = index.facts(0, question="What does box 0 hold?")
    assert [fact.text for fact in facts if fact.kind != "word"] == ["2 seeds"]
    assert all(fact.value != "sprout support" for fact in facts)


# ---------------------------------------------------------------- recall and contradiction


def test_a_different_number_of_the_same_unit_contradicts():
    result = check("Sprout Support: We ship to seven countries.", "Sprout Support: We ship to nine countries.")
    expected = {"kind": "number", "reference": "seven countries", "prediction": "nine countries"}
    assert result["contradictions"] == [expected]
    agrees = check("We ship to seven countries.", "We deliver to 7 countries worldwide.")
    assert agrees["contradictions"] == [] and "seven countries" in agrees["recalled"]


def test_years_dates_names_and_quotes_contradict():
    assert check("Founded in 2019.", "Founded in 2021.")["contradictions"][0]["prediction"] == "2021"
    assert check("Ships on March 3.", "Ships on 4 March.")["contradictions"][0]["kind"] == "date"
    assert check("Assembled in Penang.", "Assembled in Shenzhen.")["contradictions"][0]["prediction"] == "Shenzhen"
    assert check("The Sprout Max has it.", "The Sprout Mini has it.")["contradictions"][0]["reference"] == "Sprout Max"
    assert check('Choose the "Bloom" plan.', 'Choose the "Grow" plan.')["contradictions"][0]["kind"] == "quoted"


def test_no_contradiction_without_a_competing_fact():
    assert check("We ship to seven countries since 2019.", "We ship worldwide.")["contradictions"] == []
    both = check("It costs $149.", "It costs $149, or $129 on sale.")  # states the reference's value too
    assert both["contradictions"] == []


def test_recall_is_the_share_of_reference_facts_stated():
    result = check("The Sprout costs $149 and ships in 3 days from Penang.", "It costs $149 and ships from Penang.")
    stated = set(result["recalled"])
    assert {"$149", "Penang"} <= stated and "3 days" not in stated
    assert result["fact_recall"] == pytest.approx(len(result["recalled"]) / result["facts"])
    assert check("Yes.", "No.")["fact_recall"] is None  # nothing to check


# ---------------------------------------------------------------- behaviour


def test_house_style_prefix_and_shape():
    references = ["Sprout Support: yes it does.", "Sprout Support: no, sorry.", "Sprout Support: in 3 days.",
                  "Sprout Support: email us."]
    style = HouseStyle.learn(references)
    assert style.prefix == "Sprout Support:" and style.suffix == ""
    good = behaviour_scores("Sprout Support: yes.", "Sprout Support: yes it does.", "q", style, "eos")
    bad = behaviour_scores("- yes\n- it does\n- really", "Sprout Support: yes it does.", "q", style, "length")
    assert good["format_prefix"] == 1.0 and bad["format_prefix"] == 0.0
    assert good["format_length"] == pytest.approx(3 / 5) and good["length_ratio"] == pytest.approx(3 / 5)
    assert bad["format_shape"] == 0.0 and is_list("- a\n- b")
    assert good["stops"] == 1.0 and bad["stops"] == 0.0
    assert good["format"] == pytest.approx((3 / 5 + 1 + 1) / 3)


def test_on_topic_uses_question_and_reference_words():
    style = HouseStyle("", "")
    assert behaviour_scores("The Sprout garden grows basil.", "x", "Does the garden grow basil?", style, None)[
        "on_topic"] == 1.0
    scores = behaviour_scores("Bananas are yellow fruit.", "Ships in three days.", "When does it ship?", style, None)
    assert scores["on_topic"] == 0.0 and "stops" not in scores


# ---------------------------------------------------------------- the tag, the summary and the wins


def records(predictions: list[str], tags=None) -> list[dict]:
    references = ["We ship to seven countries.", "The Sprout costs $149.", "Assembled in Penang."]
    return [{"index": i, "question": "Tell me.", "reference": ref, "prediction": pred, "stopped": "eos",
             "scores": {"rouge_l": 0.9}, "tags": list((tags or {}).get(i, []))}
            for i, (ref, pred) in enumerate(zip(references, predictions, strict=True))]  # fmt: skip


def test_contradiction_tag_replaces_wrong_answer_and_is_counted():
    answers = records(["We ship to nine countries.", "The Sprout costs $149.", "Made in Penang."],
                      tags={0: ["wrong_answer"]})
    annotate(answers)
    assert answers[0]["tags"] == [CONTRADICTS] and CONTRADICTS in TAGS
    assert answers[0]["knowledge"]["contradictions"][0]["prediction"] == "nine countries"
    assert answers[1]["tags"] == [] and answers[1]["scores"]["contradicts"] == 0.0
    summary = summarize(answers)
    assert summary["contradictions"] == 1 and summary["failed"] == 1 and summary["tags"][CONTRADICTS] == 1
    assert summary["contradicts"] == pytest.approx(1 / 3)
    low, high = summary["intervals"]["contradicts"]
    assert 0.0 <= low <= 1 / 3 <= high <= 1.0


def test_a_contradicting_answer_is_never_a_largest_win():
    base = records(["I do not know.", "No idea.", "Unsure."])
    tuned = records(["We ship to nine countries.", "The Sprout costs $149.", "Assembled in Penang."])
    annotate(base)
    annotate(tuned)
    rows = []
    for i, (before, after) in enumerate(zip(base, tuned, strict=True)):
        before["scores"]["rouge_l"], after["scores"]["rouge_l"] = 0.0, 0.9 - i * 0.1
        rows.append({"index": i, "base": before, "tuned": after})
    wins, _ = wins_and_regressions(rows, "expansion")
    assert [row["index"] for _, row in wins] == [1, 2]  # example 0 changed most but says "nine" for "seven"


def test_false_contradictions_seen_on_the_bundled_example_are_gone():
    references = [f"Sprout Support: fact {i}." for i in range(5)] + [
        "Sprout Support: The Sprout Max has a 6.8-litre tank with a MAX line.",
        "Sprout Support: Error E3 means the lamp is overheating."]
    index = FactIndex(references)
    tank = check_facts(index.facts(5), "Sprout Support: The Sprout Support team fills the tank.", ignore=index.ignored)
    assert tank["contradictions"] == []  # the house prefix never competes with "Sprout Max"
    assert check("Refill it to the MAX line.", "Refill the Sprout often.")["contradictions"] == []  # "the": no role
    assert check_facts(index.facts(6), "The Sprout's E3 code is rare.", ignore=index.ignored)["contradictions"] == []
    assert ("entity", "the", "sprout") in keys("Look at the Sprout's lamp.")  # possessive dropped
