"""Defect 8: a full disk is one line (path, space needed), the last checkpoint stays loadable, no .tmp is left."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import uuid

import pytest

from test_serve_support import make_run_dir
from tunesmith.config import load_config
from tunesmith.errors import TunesmithError
from tunesmith.runs import atomic_write_text
from tunesmith.train import checkpoint as ckpt
from tunesmith.train import train
from tunesmith.use import export as export_module
from tunesmith.use.export import export

SAFETENSORS_ENOSPC = (
    'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
)


def _config(run, model_dir, data, *extra):
    return load_config(None, [f"model={model_dir}", f"data.path={data}", f"run_dir={run}", "train.max_steps=4",
                              "train.save_every=2", "data.test_size=8", "train.compile=false", *extra])


@pytest.fixture
def qa_file(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps({"question": f"What is {i} plus {i}?", "answer": f"It is {2 * i}."}) + "\n"
                            for i in range(40)))
    return path


def _usage(folder) -> int:
    """Bytes of disk the files take (whole blocks, as tmpfs counts them)."""
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def small_disk(tmp_path):
    """Mount a size-limited tmpfs (root only); the test sizes it."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a size-limited tmpfs needs root and mount(8); the ENOSPC unit tests below still run")
    mounted = []

    def mount(size: int):
        point = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_checkpoint_on_a_full_tmpfs(tmp_path, tiny_model_dir, qa_file, small_disk):
    # measure what a run holds up to its first checkpoint, on an ordinary disk
    probe = tmp_path / "probe"
    train(_config(probe, tiny_model_dir, qa_file, "train.method=full", "train.max_steps=2"), progress=False)
    checkpoint = _usage(probe / "checkpoints" / "step-2")
    before_second = _usage(probe) - _usage(probe / "model")
    # room for everything up to step-2, and half of the step-4 checkpoint
    disk = small_disk(((before_second + checkpoint // 2) // 4096 + 1) * 4096)
    run = disk / "run"
    with pytest.raises(TunesmithError) as caught:
        train(_config(run, tiny_model_dir, qa_file, "train.method=full"), progress=False)
    message = str(caught.value)
    assert message.startswith(f"disk full writing {run / 'checkpoints' / 'step-4'}: it needs about ")
    assert "\n" not in message and "free there" in message
    assert not list((run / "checkpoints").glob(".*.tmp"))  # the half-written checkpoint is gone
    last = ckpt.latest_checkpoint(run / "checkpoints")
    assert last.name == "step-2" and ckpt.read_state(last)["step"] == 2
    assert ckpt.read_weights(last)  # still loadable


def test_final_weights_on_a_full_disk(tmp_path, tiny_model_dir, qa_file, monkeypatch):
    def full_disk(cluster, wrapped, model, tokenizer, template, output):
        staging = output.with_name(f".{output.name}.tmp")
        staging.mkdir()
        (staging / "adapter_model.safetensors").write_bytes(b"half")
        raise Exception(SAFETENSORS_ENOSPC)  # safetensors' SafetensorError keeps only the message

    monkeypatch.setattr("tunesmith.train.api.save_output", full_disk)
    run = tmp_path / "run"
    with pytest.raises(TunesmithError, match=rf"^disk full writing {run / 'adapter'}: it needs about [\d.]+ KB"):
        train(_config(run, tiny_model_dir, qa_file), progress=False)
    assert not (run / ".adapter.tmp").exists() and not (run / "adapter").exists()
    assert ckpt.read_state(ckpt.latest_checkpoint(run / "checkpoints"))["step"] == 4  # rerun resumes from here


def test_export_on_a_full_disk_leaves_no_staging(tmp_path, tiny_model_dir, monkeypatch):
    run = make_run_dir(tmp_path / "run", tiny_model_dir)
    out_parent = tmp_path / "exports"
    out_parent.mkdir()

    def full_disk(self, folder, **kwargs):
        (folder / "model.safetensors").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("transformers.PreTrainedModel.save_pretrained", full_disk)
    with pytest.raises(TunesmithError, match=rf"^disk full writing {out_parent / 'merged'}: it needs about "):
        export(run, out_parent / "merged")
    assert list(out_parent.iterdir()) == []


def test_small_files_on_a_full_disk(tmp_path, monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(TunesmithError, match=r"disk full writing .*report.json: it needs about 13 B"):
        atomic_write_text(tmp_path / "report.json", '{"ok": true}\n')
    assert list(tmp_path.iterdir()) == []


def test_export_folder_respects_the_umask_and_refusals_come_before_loading(tmp_path, tiny_model_dir):
    run = make_run_dir(tmp_path / "run", tiny_model_dir)
    old = os.umask(0o022)
    try:
        out = export(run, tmp_path / "merged")
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o755

    (tmp_path / "runs").mkdir()
    with pytest.raises(TunesmithError, match=r"runs/missing does not exist"):
        export(tmp_path / "runs" / "missing", tmp_path / "out1")
    unloadable = tmp_path / "copied-run"  # its base model is gone: loading would fail, the refusal comes first
    shutil.copytree(run / "adapter", unloadable / "adapter")
    (unloadable / "config.yaml").write_text("model: /nowhere/base\n")
    with pytest.raises(TunesmithError, match="needs --merge"):
        export_module.export(unloadable, tmp_path / "out2", merge=False)


def test_prep_on_a_full_tmpfs(tmp_path, tiny_model_dir, qa_file, small_disk):
    from tunesmith.data.prepare import prepare

    disk = small_disk(64 * 1024)
    run = disk / "run"
    with pytest.raises(TunesmithError) as caught:
        prepare(_config(run, tiny_model_dir, qa_file, "data.max_length=512"))
    assert str(caught.value).startswith(f"disk full writing {run / 'data'}: ")
    assert "\n" not in str(caught.value)
    assert not list(disk.rglob(".data-*"))  # no half-written staging left
