"""Eval loss of trained models on held-out question/answer pairs, computed one way for every side.

The loss is the mean negative log-likelihood of the answer tokens (and the EOS after them) given
the question, over all held-out pairs, with the text built as TRL builds a prompt/completion row
(question + answer, tokenized together, prompt tokens masked) so that neither side is favoured;
with --chat-template, as one user/assistant exchange in the model's chat template.
Weights are evaluated in fp32 whatever precision they were trained in, on the GPU when there is one.

  python bench/heldout_loss.py --model BASE_DIR --data heldout.jsonl [--trained DIR ...]

`--trained` takes LoRA adapter folders (adapter_config.json), full model folders, or `base` for
the untrained model (the default). Prints one JSON line: {"DIR or base": loss, ...}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def completion_loss(model, tokenizer, rows: list[dict], prompt_field: str, completion_field: str,
                    chat_template: bool = False) -> float:
    """Token-weighted mean NLL of the completions (EOS included) given their prompts."""
    total, count = 0.0, 0
    with torch.inference_mode():
        for row in rows:
            n_prompt, ids = encode(tokenizer, row[prompt_field], row[completion_field], chat_template)
            logits = model(torch.tensor([ids], device=model.device)).logits[0, :-1].float()
            targets = torch.tensor(ids[1:], device=model.device)
            nll = torch.nn.functional.cross_entropy(logits, targets, reduction="none")[n_prompt - 1 :]
            total, count = total + nll.sum().item(), count + nll.numel()
    return total / count


def encode(tokenizer, prompt: str, completion: str, chat_template: bool) -> tuple[int, list[int]]:
    """(prompt tokens, prompt + completion tokens ending in EOS): plain text, or one user/assistant
    exchange in the model's chat template (system prompt included, nothing scored after its EOS)."""
    eos = tokenizer.eos_token_id
    if not chat_template:
        ids = tokenizer(prompt + completion)["input_ids"]
        return len(tokenizer(prompt)["input_ids"]), ids + ([] if ids[-1] == eos else [eos])
    user = [{"role": "user", "content": prompt}]
    exchange = user + [{"role": "assistant", "content": completion}]
    n_prompt = len(tokenizer.apply_chat_template(user, add_generation_prompt=True, return_dict=True)["input_ids"])
    ids = tokenizer.apply_chat_template(exchange, return_dict=True)["input_ids"]
    return n_prompt, ids[: len(ids) - ids[::-1].index(eos)]


def load(base: str, trained: str):
    if trained == "base":
        return AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if (Path(trained) / "adapter_config.json").is_file():
        from peft import PeftModel

        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        return PeftModel.from_pretrained(model, trained)
    return AutoModelForCausalLM.from_pretrained(trained, dtype=torch.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="base model folder (and its tokenizer)")
    parser.add_argument("--data", required=True, help="held-out JSONL")
    parser.add_argument("--trained", nargs="+", default=["base"], help="adapter or model folders, or base")
    parser.add_argument("--prompt-field", default="question")
    parser.add_argument("--completion-field", default="answer")
    parser.add_argument("--chat-template", action="store_true",
                        help="render each pair with the model's chat template instead of as plain text")
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    rows = [json.loads(line) for line in Path(args.data).read_text(encoding="utf-8").splitlines() if line.strip()]
    losses = {}
    for trained in args.trained:
        model = load(args.model, trained).to("cuda" if torch.cuda.is_available() else "cpu").eval()
        losses[trained] = completion_loss(model, tokenizer, rows, args.prompt_field, args.completion_field,
                                          args.chat_template)
        del model  # one model on the device at a time
    print(json.dumps(losses))


if __name__ == "__main__":
    main()
