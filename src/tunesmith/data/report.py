"""The data report: data_report.json (numbers and checks) and the short human summary prep prints."""

from __future__ import annotations

import numpy as np

from tunesmith.data.stats import length_summary, padding_report

SHOWN_REJECTED = 5
STATUS_MARK = {"ok": "ok     ", "warning": "WARNING", "error": "ERROR  "}


def assemble(*, data, batch_size: int, tokenizer, template, loaded, test_loaded, rows_loaded: int, numbers: dict,
             keep: np.ndarray, n_test: int, n_train_rows: int, leakage, test_sources, train_sources,
             within_train: int, checks: list, test_source: str, answer_length: dict,
             documents: dict | None = None) -> dict:
    """Everything prep found, as a JSON-ready dict (keys documented in docs/ARCHITECTURE.md)."""
    loads = [r for r in (loaded, test_loaded) if r is not None]
    lengths = numbers["length"][keep]
    trained = int(numbers["trained_tokens"][keep].sum())
    response, kept = numbers["response_tokens"], numbers["response_kept"]
    return {
        "rows_loaded": rows_loaded,
        "rows_rejected": sum(r.rejected_count for r in loads),
        "rejected": [{"source": b.source, "problem": b.problem} for r in loads for b in r.rejected],
        "format": loaded.chosen_format,
        "format_reason": loaded.format_reason,
        "template": template.name,
        "tokenizer": {"name": str(getattr(tokenizer, "name_or_path", "")), "bos": tokenizer.bos_token,
                      "eos": tokenizer.eos_token, "pad": tokenizer.pad_token},
        "settings": {k: getattr(data, k) for k in ("path", "test_path", "test_size", "seed", "max_length",
                                                   "truncation_side", "train_on_prompt", "packing", "window_overlap")},
        "train_examples": int(keep.sum()),
        "train_rows": n_train_rows,
        "test_examples": n_test,
        "test_source": test_source,
        "left_out_examples": int((~keep).sum()),
        "lengths": {
            "prompt": length_summary(numbers["prompt_tokens"]),
            "response": length_summary(response),
            "total": length_summary(numbers["length"]),
        },
        "truncated": {
            "examples": int(np.sum(numbers["prompt_tokens"] + response > data.max_length)),
            "whole_response_lost": int(np.sum((kept == 0) & (response > 0))),
            "part_response_lost": int(np.sum((kept > 0) & (kept < response))),
        },
        "padding_waste": padding_report(lengths, _packed(lengths, data.max_length), batch_size, data.seed),
        "trained_token_fraction": round(trained / max(1, int(lengths.sum())), 4),
        "duplicates": {
            "train_repeated_prompts": within_train,
            "test_in_train_exact": len(leakage.exact),
            "test_in_train_near": len(leakage.near),
            "near_pairs": [{"test": test_sources(np.array([t]))[0], "train": _train_source(train_sources, r),
                            "similarity": s} for t, r, s in leakage.near_pairs],
        },
        "answer_length": answer_length,
        "documents": documents,
        "checks": {c.name: {k: v for k, v in c.as_dict().items() if k != "name"} for c in checks},
    }


def document_counts(train_windows: np.ndarray, test_windows: np.ndarray, trained: np.ndarray) -> dict:
    """Raw text: how many documents, how many were split into max_length windows, and what trains."""
    both = np.concatenate([train_windows, test_windows])
    return {
        "documents": int(np.sum(both <= 1)),  # each document has one row that is its whole or its 1st window
        "split_into_windows": int(np.sum(both == 1)),
        "windows": int(np.sum(both >= 1)),
        "train_rows": int(len(train_windows)),
        "tokens_trained": int(trained.sum()),
    }


def _packed(lengths: np.ndarray, capacity: int) -> np.ndarray:
    """Row lengths as packing (best-fit decreasing) makes them."""
    from tunesmith.data.pack import pack_bins

    return np.asarray([int(lengths[row].sum()) for row in pack_bins(lengths, capacity)], dtype=np.int64)


def _train_source(train_sources, position: int) -> str | None:
    return train_sources(np.array([position]))[0] if position >= 0 else None


def summary(report: dict, previews: list[str], location: str, cached: bool) -> str:
    """A few lines a user reads before spending training time: counts, lengths, waste, checks, examples."""
    n = report
    lengths, truncated, waste = n["lengths"], n["truncated"], n["padding_waste"]
    settings = n["settings"]
    lines = [
        f"data: {settings['path']} — format {n['format']} ({n['format_reason']}), template {n['template']}",
        f"rows: {n['rows_loaded']:,} loaded, {n['rows_rejected']:,} rejected → {n['train_examples']:,} train, "
        f"{n['test_examples']:,} test ({n['left_out_examples']:,} left out of train); test = {n['test_source']}",
        "tokens per train example (min / median / p95 / max; total after truncation): " + "; ".join(
            f"{part} {s['min']} / {s['median']} / {s['p95']} / {s['max']}" for part, s in lengths.items()),
        f"truncation at {settings['max_length']} ({settings['truncation_side']}): {truncated['examples']:,} cut, "
        f"{truncated['part_response_lost']:,} lose part of the answer, "
        f"{truncated['whole_response_lost']:,} all of it",
        f"padding at batch {waste['batch_size']}: {waste['random']:.1%} in random batches, "
        f"{waste['length_grouped']:.1%} length-grouped, {waste['packed']:.1%} packed"
        + (f" (packing on: {n['train_rows']:,} rows)" if settings["packing"] else ""),
        f"trained tokens: {n['trained_token_fraction']:.1%} of all tokens"
        + (" (train_on_prompt)" if settings["train_on_prompt"] else " (prompts masked)"),
        f"duplicates: {n['duplicates']['train_repeated_prompts']:,} repeated prompts in train; test prompts in "
        f"train: {n['duplicates']['test_in_train_exact']:,} verbatim, {n['duplicates']['test_in_train_near']:,} near",
        *([f"documents: {docs['documents']:,} ({docs['split_into_windows']:,} longer than "
            f"data.max_length={settings['max_length']}, split into {docs['windows']:,} windows"
            f"{' overlapping by ' + str(settings['window_overlap']) + ' tokens' if settings['window_overlap'] else ''}"
            f"); {docs['tokens_trained']:,} tokens trained in {docs['train_rows']:,} train rows"]
          if (docs := n.get("documents")) else []),
        f"answer length: the test answers' p95 is {n['answer_length']['p95']} tokens, so eval.max_new_tokens: auto "
        f"= {n['answer_length']['max_new_tokens']} ({n['answer_length']['rule']})",
        "checks:",
    ]
    for name, check in n["checks"].items():
        where = f" (e.g. {', '.join(check['sources'][:3])})" if check["sources"] else ""
        lines.append(f"  {STATUS_MARK.get(check['status'], check['status'])} {name:16} {check['message']}{where}")
    if n["rows_rejected"]:
        rows = f"{n['rows_rejected']:,} row{'s' if n['rows_rejected'] != 1 else ''}"
        lines.append(f"  {STATUS_MARK['warning']} {'bad_rows':16} {rows} could not be used and were left out "
                     "(all listed under 'rejected' in data_report.json):")
        lines += [f"      {r['source']}: {r['problem']}" for r in n["rejected"][:SHOWN_REJECTED]]
        if n["rows_rejected"] > SHOWN_REJECTED:
            lines.append(f"      … and {n['rows_rejected'] - SHOWN_REJECTED:,} more")
    lines += previews
    took = f"prepared in {n.get('seconds', 0):.1f} s, peak memory {n.get('peak_rss_mb', 0):,} MB"
    lines.append(f"{'cached (data, settings and tokenizer unchanged; ' + took + ')' if cached else took}: {location}")
    return "\n".join(lines)
