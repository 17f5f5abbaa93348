"""`EmbedConfig`: one typed, validated config for an embedding fine-tune (plain or Matryoshka).

Every field is documented on the class and checked in ``__post_init__``; a bad value raises
:class:`labkit.config.ConfigError` naming the field and the value (the base, ``from_dict``,
``from_yaml``, ``to_dict`` and ``fingerprint`` are shared with ``TrainConfig``). A dimension larger than the model's
can only be caught once the model is known: :meth:`EmbedConfig.check_model_dim` does that before
any training starts.

>>> cfg = EmbedConfig(name="gear-mrl")
>>> cfg.matryoshka_dims
(384, 256, 128, 64, 32)
>>> EmbedConfig(matryoshka_dims=(384, 0))
Traceback (most recent call last):
...
labkit.config.ConfigError: matryoshka_dims=(384, 0): every dimension must be a positive integer
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from labkit.config import ConfigBase, ConfigError, _is_int, _is_number

DEFAULT_DIMS = (384, 256, 128, 64, 32)



@dataclass(frozen=True)
class EmbedConfig(ConfigBase):
    """Everything that decides one embedding fine-tune. Identical configs share one run folder.

    Attributes:
        name: run-folder prefix; the folder is ``runs/<name>-<config hash>``.
        model: an embedded embedder name (``minilm-l6``), a local folder or a hub id.
        use_matryoshka: wrap MultipleNegativesRankingLoss in MatryoshkaLoss (Kusupati et al.
            2022) so that every prefix in ``matryoshka_dims`` is trained as an embedding of its
            own. ``False`` trains plain MNRL, the comparison arm.
        matryoshka_dims: the nested sizes. Trained (Matryoshka arm) and always evaluated. Must
            include the model's full size, largest first is not required (we sort).
        matryoshka_weights: one loss weight per dim (same order as ``matryoshka_dims``);
            ``None`` weighs every dim equally, as the sentence-transformers default does.
        epochs: passes over the training pairs (may be fractional, e.g. 0.5).
        batch_size: pairs per step. With MNRL every other pair in the batch is a negative, so
            larger batches give a harder, more useful contrast (and cost more memory).
        learning_rate: peak AdamW learning rate, linear warm-up then linear decay.
        warmup_ratio: fraction of the steps spent warming the learning rate up.
        use_hard_negatives: feed the catalog's third column (a product of a sibling category
            sharing the query's words) as an explicit negative; ``False`` keeps only the
            in-batch negatives.
        max_pairs: train on the first ``max_pairs`` rows only (``None``: all of them).
        families: restrict the catalog to these families (``None``: all); the smoke profile
            uses two so that CI stays quick.
        max_seq_length: tokens per text; longer texts are cut. Product texts here are < 100.
        eval_every: evaluate on the validation queries every this many steps (live curve);
            ``0`` evaluates only at the end.
        val_queries: at most this many validation queries during training (they are cheap;
            the corpus encode dominates).
        val_pairs: at most this many validation triplets for the validation loss.
        pairs_path: a JSONL or CSV file of your own training pairs (columns ``anchor``,
            ``positive``, optional ``negative``); ``None`` uses the gear catalog's.
        seed: seeds data order and initialisation of anything random.
    """

    name: str = "gear-embed"
    model: str = "minilm-l6"
    use_matryoshka: bool = True
    matryoshka_dims: tuple[int, ...] = DEFAULT_DIMS
    matryoshka_weights: tuple[float, ...] | None = None
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 1e-4
    warmup_ratio: float = 0.1
    use_hard_negatives: bool = True
    max_pairs: int | None = None
    families: tuple[str, ...] | None = None
    max_seq_length: int = 128
    eval_every: int = 0
    val_queries: int = 200
    val_pairs: int = 128
    pairs_path: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        # Lists arrive from YAML; store tuples so the config stays hashable and frozen.
        for key in ("matryoshka_dims", "matryoshka_weights", "families"):
            value = getattr(self, key)
            if isinstance(value, list):
                object.__setattr__(self, key, tuple(value))
        self._validate()

    # -----------------------------------------------------------------------------------------
    def _fail(self, field: str, why: str) -> None:
        raise ConfigError(f"{field}={getattr(self, field)!r}: {why}")

    def _validate(self) -> None:
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", self.name):
            self._fail("name", "use 1-64 letters, digits, '-', '_' or '.' (it becomes a folder name)")
        if not isinstance(self.model, str) or not self.model:
            self._fail("model", "name an embedded embedder, a local folder or a hub id")
        for flag in ("use_matryoshka", "use_hard_negatives"):
            if not isinstance(getattr(self, flag), bool):
                self._fail(flag, "must be True or False")
        dims = self.matryoshka_dims
        if not isinstance(dims, tuple) or not dims:
            self._fail("matryoshka_dims", "give at least one dimension, e.g. (384, 256, 128, 64, 32)")
        if any(not _is_int(d) or d <= 0 for d in dims):
            self._fail("matryoshka_dims", "every dimension must be a positive integer")
        if len(set(dims)) != len(dims):
            self._fail("matryoshka_dims", "each dimension may appear once")
        if self.matryoshka_weights is not None:
            weights = self.matryoshka_weights
            if not isinstance(weights, tuple) or len(weights) != len(dims):
                self._fail("matryoshka_weights", f"give one weight per dimension ({len(dims)}), or None")
            if any(not _is_number(w) or w <= 0 for w in weights):
                self._fail("matryoshka_weights", "weights must be positive numbers")
        if not _is_number(self.epochs) or not 0 < self.epochs <= 50:
            self._fail("epochs", "must be a number in (0, 50]")
        if not _is_int(self.batch_size) or not 2 <= self.batch_size <= 4096:
            self._fail("batch_size", "must be an integer >= 2 (MNRL needs other pairs in the batch as negatives)")
        if not _is_number(self.learning_rate) or not 0 < self.learning_rate < 1:
            self._fail("learning_rate", "must be a number in (0, 1); 1e-5 to 2e-4 is usual here")
        if not _is_number(self.warmup_ratio) or not 0 <= self.warmup_ratio < 1:
            self._fail("warmup_ratio", "must be in [0, 1)")
        if self.max_pairs is not None and (not _is_int(self.max_pairs) or self.max_pairs < self.batch_size):
            self._fail("max_pairs", f"must be None or an integer >= batch_size ({self.batch_size})")
        if self.families is not None and (
            not isinstance(self.families, tuple) or not self.families
            or any(not isinstance(f, str) for f in self.families)
        ):
            self._fail("families", "must be None or a non-empty list of family names")
        if not _is_int(self.max_seq_length) or not 8 <= self.max_seq_length <= 512:
            self._fail("max_seq_length", "must be an integer in [8, 512]")
        for key in ("eval_every",):
            if not _is_int(getattr(self, key)) or getattr(self, key) < 0:
                self._fail(key, "must be an integer >= 0")
        for key in ("val_queries", "val_pairs"):
            if not _is_int(getattr(self, key)) or getattr(self, key) < 1:
                self._fail(key, "must be a positive integer")
        if self.pairs_path is not None and (not isinstance(self.pairs_path, str) or not self.pairs_path):
            self._fail("pairs_path", "must be None or a path to a .jsonl or .csv file")
        if not _is_int(self.seed):
            self._fail("seed", "must be an integer")

    def check_model_dim(self, model_dim: int) -> None:
        """Refuse dims the model cannot give, before any training starts."""
        too_big = [d for d in self.matryoshka_dims if d > model_dim]
        if too_big:
            self._fail("matryoshka_dims", f"{too_big} exceed the model's embedding size {model_dim}; "
                                          f"{self.model} embeddings have {model_dim} dimensions")
        if self.use_matryoshka and model_dim not in self.matryoshka_dims:
            self._fail("matryoshka_dims", f"must include the model's full size {model_dim} "
                                          "(otherwise the full embedding is never trained)")

    # -----------------------------------------------------------------------------------------
    @property
    def dims(self) -> tuple[int, ...]:
        """The dimensions, largest first."""
        return tuple(sorted(self.matryoshka_dims, reverse=True))

    @property
    def run_folder_name(self) -> str:
        return f"{self.name}-{self.fingerprint()}"

