"""THE generation engine: the only code that generates, used by eval, compare, chat, generate and serve.

- prompts: `encode_prompt(tokenizer, template, messages, input_text)` (data/tokenize.py) renders
  a conversation into prompt ids exactly as training did;
- decoding.py: `Sequence` (one request and its output), `generate` (batched KV-cache decoding in
  which finished rows leave the batch and waiting ones join), `decode_batch` (the same, step by
  step, for streaming), `stop_token_ids` (EOS ids + special-token stop strings);
- batch.py: the batch and its KV cache; sampling.py: greedy / temperature + top-p;
  detokenize.py: ids -> text, stop strings, streaming without half characters;
- worker.py: `Engine`, the same batch on a worker thread taking new requests between steps
  (continuous batching), for the HTTP server.

Of the two stacks the project had (transformers' `generate` in eval, this KV loop in serve/chat),
this one was kept: per generated token it costs what `generate` costs (bench/bench_eval_tuned.py
--fixed-length), and it also lets finished rows leave the batch, streams, samples each row with
its own settings, and takes new rows between steps.
"""

from tunesmith.data.tokenize import encode_prompt
from tunesmith.engine.decoding import Sequence, context_length, decode_batch, generate, stop_token_ids

__all__ = ["Sequence", "context_length", "decode_batch", "encode_prompt", "generate", "stop_token_ids"]
