"""The dashboard's JSON API on run directories built by hand (tiny scripted models, seconds)."""

from __future__ import annotations

import json
import math
import shutil
import time

import pytest
from fastapi.testclient import TestClient

from test_eval_compare import PARIS, SPROUT
from tunesmith.config import load_config
from tunesmith.errors import TunesmithError
from tunesmith.runs import RunDir
from tunesmith.ui import launches
from tunesmith.ui.app import create_app
from tunesmith.ui.config_form import build_config, form_fields
from tunesmith.ui.runs_index import LIVE_SECONDS, config_diff, live_window, planned_steps, status
from ui_runs import ESTIMATE, MEASURED, make_runs


@pytest.fixture(scope="module")
def built_runs(tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        return make_runs(tmp_path_factory.mktemp("runs"), monkeypatch)


@pytest.fixture
def runs_dir(built_runs, tmp_path):
    """A fresh copy per test (modification times kept: `old` stays an hour old); `live` written just now."""
    copy = shutil.copytree(built_runs, tmp_path / "runs", symlinks=True)
    (copy / "live" / "train_log.jsonl").touch()
    return copy


@pytest.fixture
def client(runs_dir):
    with TestClient(create_app(runs_dir)) as client:
        yield client


def test_runs_table_reads_status_steps_and_metrics(client):
    runs = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
    assert sorted(runs) == ["live", "old", "run"]  # base/ has no config.yaml: not a run
    assert [runs[n]["status"] for n in ("run", "old", "live")] == ["finished", "interrupted", "running"]
    run = runs["run"]
    assert run["steps"] == 20 and run["best_eval_loss"] == pytest.approx(2.5 / math.sqrt(20))
    assert run["metrics"]["base"]["exact_match"] == pytest.approx(0.1)
    assert run["metrics"]["tuned"]["exact_match"] == pytest.approx(0.9)
    assert runs["live"]["steps"] == 10 and runs["live"]["planned_steps"] == 40 and runs["live"]["metrics"] == {}


def test_two_runs_diffed(client):
    data = client.get("/api/diff", params={"a": "run", "b": "old"}).json()
    diff = {d["key"]: (d["a"], d["b"]) for d in data["config"]}
    assert diff["train.learning_rate"] == (None, 1e-3) and diff["train.max_steps"] == (None, 40)
    assert "eval.max_new_tokens" not in diff  # same in both
    assert data["metrics"]["a"]["tuned"]["exact_match"] == pytest.approx(0.9) and data["metrics"]["b"] is None


def test_training_log_is_read_incrementally(client, runs_dir):
    first = client.get("/api/training", params={"run": "live"}).json()
    assert [r["step"] for r in first["records"]] == list(range(1, 11)) and first["next"] == 10
    with open(runs_dir / "live" / "train_log.jsonl", "a") as log:
        log.write(json.dumps({"step": 11, "loss": 2.9, "lr": 5e-4}) + '\n{"step": 12, "lo')  # torn last line
    later = client.get("/api/training", params={"run": "live", "since": first["next"]}).json()
    assert later["records"] == [{"step": 11, "loss": 2.9, "lr": 5e-4}] and later["planned_steps"] == 40
    finished = client.get("/api/training", params={"run": "run"}).json()
    assert finished["info"]["estimate"] == ESTIMATE and finished["info"]["measured"] == MEASURED
    assert len([r for r in finished["records"] if "eval_loss" in r]) == 4


def test_comparison_rows_tags_and_unknown_metrics(client, runs_dir):
    (runs_dir / "run" / "eval" / "judge.json").write_text(json.dumps({"agreement": 0.8}))
    (runs_dir / "run" / "check.json").write_text(json.dumps({"template": "ok"}))
    data = client.get("/api/compare", params={"run": "run"}).json()
    assert data["other"] == {"judge": {"agreement": 0.8}, "check (run)": {"template": "ok"}}
    assert data["metrics"]["tuned"]["knowledge_accuracy"] == 0.75
    assert data["metrics"]["forgetting"] == {"general_loss_change": 0.02}
    assert data["changes"] == {"better": 9, "worse": 1, "same": 0}
    worse = [row for row in data["rows"] if row["tuned_change"] < 0]
    assert len(data["rows"]) == 10 and [row["reference"] for row in worse] == [PARIS]
    assert "off_topic" in data["tags"]
    assert all(row["tuned"]["prediction"] == SPROUT for row in data["rows"])


def test_examples_show_masked_and_trained_spans(client):
    data = client.get("/api/examples", params={"run": "run", "split": "test", "offset": 8}).json()
    assert data["total"] == 10 and [e["index"] for e in data["examples"]] == [8, 9]
    spans = data["examples"][0]["spans"]
    assert [s["trained"] for s in spans] == [False, True]
    assert spans[0]["text"].endswith("assistant\n") and spans[1]["text"].startswith(SPROUT)
    assert client.get("/api/examples", params={"run": "run", "split": "valid"}).status_code == 400


def test_data_overview_has_lengths_and_missing_report(client):
    data = client.get("/api/data", params={"run": "run"}).json()
    assert data["report"]["train_examples"] == 3 and len(data["lengths"]["test"]) == 10
    assert client.get("/api/data", params={"run": "old"}).json() == {"report": None, "lengths": {}}


def _events(response) -> list[dict]:
    return [json.loads(line[6:]) for line in response.text.split("\n\n") if line.startswith("data: ")]


def test_playground_streams_base_and_tuned(client):
    answers = {}
    for side in ("base", "tuned"):
        body = {"run": "run", "model": side, "prompt": "Capital of France?", "settings": {"max_new_tokens": 16}}
        response = client.post("/api/playground", json=body)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = _events(response)
        assert events[-1] == {"done": True} and len(events) > 2  # streamed in pieces
        answers[side] = "".join(e.get("delta", "") for e in events).strip()
    assert answers == {"base": PARIS, "tuned": SPROUT}
    bad = client.post("/api/playground", json={"run": "run", "model": "few_shot", "prompt": "hi"})
    assert bad.status_code == 400 and "model must be one of base, tuned" in bad.json()["error"]
    assert client.post("/api/playground", json={"run": "nope", "model": "base", "prompt": "x"}).status_code == 404


def test_api_key_guards_the_api_but_not_the_page(runs_dir):
    with TestClient(create_app(runs_dir, api_key="s3cret")) as client:
        assert client.get("/").status_code == 200 and client.get("/static/app.js").status_code == 200
        refused = client.get("/api/runs")
        assert refused.status_code == 401 and "Bearer" in refused.json()["error"]
        assert client.get("/api/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/api/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_form_is_generated_from_the_config_model():
    fields = {f["key"]: f for f in form_fields()}
    assert fields["train.method"]["kind"] == "choice" and fields["train.method"]["choices"] == ["lora", "full", "qlora"]
    assert fields["train.max_steps"]["kind"] == "int" and fields["train.max_steps"]["default"] is None
    assert fields["train.compile"]["choices"] == [True, False, "auto"]
    assert fields["train.lora.r"]["default"] == 16 and "run_dir" not in fields


def test_form_offers_known_models(client):
    form = client.get("/api/form").json()
    models = form["models"]  # the embedded default, then each run's model once (all three runs share one)
    assert len(models) == 2 and models[0] == "smollm2-135m-instruct" and models[1].endswith("/base")
    assert isinstance(form["pairs"], bool)  # True once a `tunesmith pairs` command exists


def test_launch_errors_are_the_clis(client, runs_dir):
    values = {"train.epochs": "-1", "train.methd": "full"}
    response = client.post("/api/launch", json={"name": "new", "values": values})
    with pytest.raises(TunesmithError) as cli:
        load_config(None, [f"{k}={v}" for k, v in values.items()])
    assert response.status_code == 400 and response.json()["error"] == str(cli.value)
    assert "did you mean 'train.method'" in response.json()["error"]
    bad_name = client.post("/api/launch", json={"name": "../escape", "values": {}})
    assert bad_name.status_code == 400 and "run name" in bad_name.json()["error"]
    taken = client.post("/api/launch", json={"name": "old", "values": {}})
    assert taken.status_code == 400 and "already holds a run" in taken.json()["error"]
    config = build_config(runs_dir, "fresh", {"train.max_steps": "5", "data.template": "qa"})
    assert config.train.max_steps == 5 and config.run_dir == str((runs_dir / "fresh").resolve())


def test_launched_run_that_failed(runs_dir, monkeypatch):
    class Exited:
        pid, returncode = 999_999_999, 2

        def wait(self):
            return 2

    monkeypatch.setattr(launches.subprocess, "Popen", lambda *a, **k: Exited())
    config = build_config(runs_dir, "broken", {})
    record = launches.launch(runs_dir, "broken", config)
    assert record["command"][-2:] == ["run", str(runs_dir / ".ui" / "broken.yaml")]
    for _ in range(100):  # the waiting thread records the exit code
        if launches.state(runs_dir, runs_dir / "broken")["returncode"] == 2:
            break
        time.sleep(0.01)
    assert status(RunDir(runs_dir / "broken"), runs_dir) == "failed"
    with TestClient(create_app(runs_dir)) as client:
        names = {r["name"]: r["status"] for r in client.get("/api/runs").json()["runs"]}
    assert names["broken"] == "failed"


def test_planned_steps_and_config_diff():
    assert planned_steps({"train": {"max_steps": 7}}, {}) == 7
    assert planned_steps({"train": {"epochs": 2, "batch_size": 4}}, {"train_examples": 10}) == 6
    assert planned_steps({}, {}) is None
    assert config_diff({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}, "d": 4}) == [
        {"key": "a.c", "a": 2, "b": 3}, {"key": "d", "a": None, "b": 4}]


def test_cli_serves_on_loopback_with_the_env_key(runs_dir, monkeypatch, capsys):
    import uvicorn

    from tunesmith.cli import main

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.update(kw, app=app))
    monkeypatch.setenv("TUNESMITH_API_KEY", "k3y")
    with pytest.raises(SystemExit) as exited:  # typer exits 0 once the server returns
        main(["ui", str(runs_dir), "--port", "0"])
    assert exited.value.code == 0
    assert started["host"] == "127.0.0.1" and started["port"] == 0
    with TestClient(started["app"]) as client:
        assert client.get("/api/runs").status_code == 401
        assert client.get("/api/runs", headers={"Authorization": "Bearer k3y"}).status_code == 200
    assert "API key required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["ui", str(runs_dir / "missing")])
    assert exited.value.code == 2 and "is not a folder" in capsys.readouterr().err


def test_a_slow_run_counts_as_running_for_three_of_its_log_gaps():
    fast = [{"step": s, "tokens_seen": 100 * s, "tokens_per_s": 50.0} for s in (1, 2)]
    slow = [{"step": s, "tokens_seen": 1000 * s, "tokens_per_s": 10.0} for s in (5, 6)]  # 100 s per record
    assert live_window(fast) == LIVE_SECONDS and live_window([]) == LIVE_SECONDS
    assert live_window(slow) == pytest.approx(300.0)


def test_pairs_only_where_the_command_exists(client, runs_dir, monkeypatch):
    import subprocess

    monkeypatch.setattr("tunesmith.ui.app._has_command", lambda name: False)
    missing = client.post("/api/pairs", json={"run": "run"})
    assert missing.status_code == 501 and "no `pairs` command" in missing.json()["error"]
    calls = []
    monkeypatch.setattr("tunesmith.ui.app._has_command", lambda name: name == "pairs")
    monkeypatch.setattr(subprocess, "run", lambda command, **kw: calls.append(command) or
                        subprocess.CompletedProcess(command, 0, stdout="12 pairs written\n", stderr=""))
    made = client.post("/api/pairs", json={"run": "run"}).json()
    assert made == {"returncode": 0, "output": "12 pairs written\n"}
    assert calls[0][1:] == ["-m", "tunesmith", "pairs", str(runs_dir / "run")]
