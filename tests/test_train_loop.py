"""The training loop on a tiny random model: losses fall, the right weights move, the log is complete."""

import json

import pytest
import torch

from train_helpers import BF16_FULL, BF16_LORA, FP32, packed_rows, qa_rows, settings, text_rows, trainable_model
from tunesmith.train import fit

LOG_KEYS = {"step", "epoch", "loss", "lr", "grad_norm", "tokens_seen", "tokens_per_s"}


def _log(run_dir):
    return [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]


def _losses(run_dir):
    return [r["loss"] for r in _log(run_dir) if "loss" in r]


def _falls(losses, by=0.25):
    """The mean of the last three logged losses is well below the first."""
    return sum(losses[-3:]) / 3 < losses[0] * (1 - by)


@pytest.mark.parametrize("precision", [FP32, BF16_LORA], ids=["fp32", "bf16"])
def test_lora_loss_goes_down_and_only_adapters_change(tmp_path, precision):
    model, tokenizer = trainable_model("lora", precision)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = fit(
        model,
        qa_rows(tokenizer),
        None,
        settings(max_steps=15),
        tmp_path,
        pad_id=tokenizer.pad_token_id,
        precision=precision,
        progress=False,
    )

    assert result.steps == 15
    assert _falls(_losses(tmp_path), by=0.12)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("lora_" in n for n in changed)
    assert any("lora_B" in n for n in changed) and any("lora_A" in n for n in changed)
    assert all(p.dtype == torch.float32 for n, p in model.named_parameters() if "lora_" in n)


def test_full_fine_tuning_loss_goes_down_and_every_weight_moves(tmp_path):
    model, tokenizer = trainable_model("full", BF16_FULL)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    fit(
        model,
        qa_rows(tokenizer),
        None,
        settings(learning_rate=2e-3),
        tmp_path,
        pad_id=tokenizer.pad_token_id,
        precision=BF16_FULL,
        progress=False,
    )

    assert _falls(_losses(tmp_path))
    assert all(not torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_self_supervised_text_uses_the_same_loop(tmp_path):
    model, tokenizer = trainable_model("lora", FP32)
    fit(
        model,
        text_rows(tokenizer),
        None,
        settings(max_steps=15, learning_rate=1e-2),
        tmp_path,
        pad_id=tokenizer.pad_token_id,
        precision=FP32,
        progress=False,
    )
    assert _falls(_losses(tmp_path), by=0.05)  # a frozen random tiny head caps how far LoRA can go


def test_packed_rows_train_and_count_every_real_token(tmp_path):
    model, tokenizer = trainable_model("lora", FP32)
    rows = packed_rows(qa_rows(tokenizer), width=128)
    epoch = -(-len(rows) // 2)
    assert 8 <= epoch < 24
    fit(
        model,
        rows,
        None,
        settings(max_steps=epoch, batch_size=2),
        tmp_path,
        pad_id=tokenizer.pad_token_id,
        precision=FP32,
        progress=False,
    )
    assert _falls(_losses(tmp_path), by=0.06)
    # one epoch = every row once; padding is not counted
    assert _log(tmp_path)[-1]["tokens_seen"] == sum(len(r) for r in rows["input_ids"])


def test_log_has_one_record_per_logging_step_and_eval_records(tmp_path):
    model, tokenizer = trainable_model("lora", FP32)
    rows = qa_rows(tokenizer, n=40)
    fit(
        model,
        rows.select(range(32)),
        rows.select(range(32, 40)),
        settings(max_steps=6, log_every=2, eval_every=3),
        tmp_path,
        pad_id=tokenizer.pad_token_id,
        precision=FP32,
        progress=False,
    )
    log = _log(tmp_path)
    train = [r for r in log if "loss" in r]
    evals = [r for r in log if "eval_loss" in r]
    assert [r["step"] for r in train] == [2, 4, 6]
    assert all(set(r) == LOG_KEYS for r in train)
    assert [r["step"] for r in evals] == [3, 6]
    assert train[-1]["tokens_seen"] > train[0]["tokens_seen"] > 0
    assert train[0]["lr"] > 0 and train[-1]["lr"] < train[1]["lr"]  # warmup then cosine decay
    assert all(r["grad_norm"] > 0 and r["tokens_per_s"] > 0 for r in train)


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    runs = []
    for accum in (1, 4):
        model, tokenizer = trainable_model("lora", FP32)
        fit(
            model,
            qa_rows(tokenizer),
            None,
            settings(max_steps=4, grad_accum=accum),
            tmp_path / str(accum),
            pad_id=tokenizer.pad_token_id,
            precision=FP32,
            progress=False,
        )
        runs.append((_losses(tmp_path / str(accum)), {n: p.detach() for n, p in model.named_parameters()}))
    (loss1, w1), (loss4, w4) = runs
    assert loss1 == pytest.approx(loss4, rel=1e-5)
    for name in w1:
        torch.testing.assert_close(w1[name], w4[name], rtol=1e-4, atol=1e-6)


def test_early_stopping_and_keep_best(tmp_path):
    model, tokenizer = trainable_model("lora", FP32)
    rows = qa_rows(tokenizer, n=40)
    # a learning rate this high makes eval loss climb after the first evaluation
    result = fit(
        model,
        rows.select(range(32)),
        rows.select(range(32, 40)),
        settings(
            max_steps=40, learning_rate=0.5, warmup_ratio=0.0, eval_every=2, early_stopping_patience=2, keep_best=True
        ),
        tmp_path,
        pad_id=tokenizer.pad_token_id,
        precision=FP32,
        progress=False,
    )
    evals = [r for r in _log(tmp_path) if "eval_loss" in r]
    assert result.progress.stopped_early and result.steps < 40
    assert result.progress.best_step == min(evals, key=lambda r: r["eval_loss"])["step"]
    assert (tmp_path / "checkpoints" / "best" / "weights.safetensors").is_file()


def _with_and_without(tmp_path, change, steps, **changed_fit):
    """Train the same LoRA model twice, as built and after `change(model)` (with `changed_fit` passed to
    fit): (losses, parameter names) each."""
    runs = []
    for changed in (False, True):
        model, tokenizer = trainable_model("lora", FP32)
        if changed:
            change(model)
        fit(
            model,
            qa_rows(tokenizer),
            None,
            settings(max_steps=steps),
            tmp_path / str(changed),
            pad_id=tokenizer.pad_token_id,
            precision=FP32,
            progress=False,
            **(changed_fit if changed else {}),
        )
        runs.append((_losses(tmp_path / str(changed)), sorted(name for name, _ in model.named_parameters())))
    return runs


def test_gradient_checkpointing_changes_memory_not_results(tmp_path):
    from tunesmith.train.methods import enable_checkpointing

    (plain, _), (checkpointed, _) = _with_and_without(tmp_path, enable_checkpointing, steps=3)
    assert plain == pytest.approx(checkpointed, rel=1e-6)


def test_compiled_layers_and_loss_train_to_the_same_losses_and_keep_parameter_names(tmp_path):
    from tunesmith.train.methods import compile_layers

    def compile_all(model):
        assert compile_layers(model)

    (eager, eager_names), (compiled, compiled_names) = _with_and_without(tmp_path, compile_all, steps=4, compiled=True)
    assert eager == pytest.approx(compiled, rel=1e-4)
    assert eager_names == compiled_names


@pytest.mark.parametrize("method", ["lora", "full"])
def test_the_first_layer_runs_eagerly_where_its_input_needs_no_gradient(method):
    from tunesmith.train.methods import causal_lm, compile_layers

    model, _ = trainable_model(method, FP32)
    assert compile_layers(model)
    compiled = [layer._compiled_call_impl is not None for layer in causal_lm(model).get_decoder().layers]
    # LoRA: frozen embeddings, so layer 0's input has no gradient (a graph of its own); full: all alike
    assert compiled == ([False, True] if method == "lora" else [True, True])
