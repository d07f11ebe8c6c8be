"""The README's Python API example runs as written, on a tiny model (its one override list extended)."""

import json
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
OVERRIDES = '["train.epochs=1"]'


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_example_runs(tiny_model_dir, tmp_path, monkeypatch, capsys):
    code = readme_example()
    assert OVERRIDES in code
    tiny = [f"model={tiny_model_dir}", "train.max_steps=2", "train.batch_size=4", "data.test_size=4",
            "eval.few_shot=1", "eval.max_new_tokens=4"]
    code = code.replace(OVERRIDES, json.dumps(["train.epochs=1", *tiny]))
    monkeypatch.chdir(tmp_path)
    rows = [{"question": f"What is code {i}?", "answer": f"Code {i} opens box {i % 7}."} for i in range(24)]
    Path("faq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    Path("questions.jsonl").write_text('{"prompt": "What is code 3?"}\n{"prompt": "What is code 9?"}\n')

    exec(compile(code, str(README), "exec"), {})

    out = capsys.readouterr().out
    assert "rows: 24 loaded" in out and "tuned" in out
    run_dir = tmp_path / "runs" / "faq"  # run_dir derived from the data file's name
    assert (run_dir / "report.html").is_file() and (run_dir / "adapter").is_dir()
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert set(metrics) == {"base", "few_shot", "tuned"} and metrics["tuned"]["n"] == 4
    answers = [json.loads(line) for line in Path("answers.jsonl").read_text().splitlines()]
    assert len(answers) == 2
    assert (tmp_path / "faq-model" / "config.json").is_file()
