"""``ganforge story``: draw stories from description files, free text, or the run's own data.

Description files (``--descriptions``):

- ``.npy``: a float array (T, D) for one story or (N, T, D) for N; or a pickled CLEVR-SV-style dict
  (``CLEVR_new_%06d_%d.png`` -> vector), whose stories are taken in id order.
- ``.json``: a list of stories, each a list of T frames; a frame is a list of D numbers or a sentence.
- ``.txt``: free text, one sentence per line, stories separated by a blank line.

Sentences need ``--text-encoder PATH``: a local sentence-transformers model directory (e.g.
all-MiniLM-L6-v2, copied beforehand: nothing is downloaded). Its embedding size must be the
model's ``text_dim``, which is checked before anything is drawn.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ganforge.data.images import DataError
from ganforge.data.story import CLEVR_PATTERN


def _check_shape(array: np.ndarray, source: str, video_len: int, text_dim: int) -> np.ndarray:
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise DataError(f"{source}: expected (T, D) or (N, T, D) descriptions, got shape {tuple(array.shape)}")
    if array.shape[1] != video_len:
        raise DataError(f"{source}: stories of {array.shape[1]} frames; this model draws {video_len} "
                        f"(model.video_len)")
    if array.shape[2] != text_dim:
        raise DataError(f"{source}: descriptions of {array.shape[2]} values; this model reads {text_dim} "
                        f"(model.text_dim)")
    if not np.isfinite(array).all():
        raise DataError(f"{source}: descriptions hold NaN or infinite values")
    return array.astype(np.float32)


def encode_sentences(sentences: Sequence[str], encoder_path: str | Path, text_dim: int) -> np.ndarray:
    """Sentence embeddings (len, text_dim) from a local sentence-transformers model directory."""
    path = Path(encoder_path)
    if not path.is_dir():
        raise DataError(f"--text-encoder '{path}' is not a folder; give a local sentence-transformers model "
                        f"directory (e.g. a copy of all-MiniLM-L6-v2): nothing is downloaded")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise DataError("free-text stories need the sentence-transformers package: pip install "
                        "sentence-transformers (or give attribute vectors in a .npy/.json file)") from None
    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    # sentence-transformers 6 renamed get_sentence_embedding_dimension; older releases have only that name
    dim = (getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)()
    if dim != text_dim:
        raise DataError(f"--text-encoder '{path}' embeds sentences in {dim} values; this model was trained on "
                        f"{text_dim}-value descriptions (model.text_dim). Use the encoder the model was trained with.")
    return np.asarray(model.encode(list(sentences), convert_to_numpy=True), dtype=np.float32)


def _from_frames(stories: list[list[Any]], source: str, video_len: int, text_dim: int,
                 encoder: str | Path | None) -> np.ndarray:
    """Stories of frames that are number lists or sentences -> (N, T, D)."""
    sentences = [f for story in stories for f in story if isinstance(f, str)]
    if sentences and encoder is None:
        raise DataError(f"{source} holds sentences ({sentences[0]!r}, ...); encoding them needs --text-encoder PATH, "
                        f"a local sentence-transformers model whose embedding has {text_dim} values")
    table = dict(zip(sentences, encode_sentences(sentences, encoder, text_dim))) if sentences else {}
    for k, story in enumerate(stories):
        if len(story) != video_len:
            raise DataError(f"{source}: story {k} has {len(story)} frames; this model draws {video_len}")
    try:
        array = np.asarray([[table[f] if isinstance(f, str) else np.asarray(f, np.float32) for f in story]
                            for story in stories], dtype=np.float32)
    except ValueError as err:
        raise DataError(f"{source}: frames must be lists of {text_dim} numbers or sentences ({err})") from None
    return _check_shape(array, source, video_len, text_dim)


def read_descriptions(path: str | Path, video_len: int, text_dim: int,
                      encoder: str | Path | None = None) -> np.ndarray:
    """Descriptions (N, T, D) from a file (see the module docstring), checked against the model."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"descriptions file '{path}' does not exist")
    source = f"'{path}'"
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError:  # a pickled object: the CLEVR-SV dict
            table = np.load(path, allow_pickle=True, encoding="latin1").item()
            if not isinstance(table, dict):
                raise DataError(f"{source} holds a pickled {type(table).__name__}, not descriptions") from None
            stories: dict[int, dict[int, Any]] = {}
            for name, vec in table.items():
                m = CLEVR_PATTERN.match(str(name))
                if m:
                    stories.setdefault(int(m.group(1)), {})[int(m.group(2))] = vec
            if not stories:
                raise DataError(f"{source}: a dict without CLEVR_new_%06d_%d.png keys") from None
            full = [[s[t] for t in sorted(s)] for _, s in sorted(stories.items()) if len(s) == video_len]
            return _from_frames(full, source, video_len, text_dim, None)
        return _check_shape(array, source, video_len, text_dim)
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataError(f"{source} is not valid JSON: {err}") from None
        if not isinstance(data, list) or not data:
            raise DataError(f"{source}: expected a list of stories (each a list of frames)")
        first = data[0]
        if isinstance(first, str) or (isinstance(first, list) and first and isinstance(first[0], (int, float))):
            data = [data]  # one story given as a plain list of frames
        if not all(isinstance(story, list) for story in data):
            raise DataError(f"{source}: expected a list of stories, each a list of frames")
        return _from_frames(data, source, video_len, text_dim, encoder)
    if path.suffix == ".txt":
        blocks = [b for b in re.split(r"\n\s*\n", path.read_text(encoding="utf-8").strip()) if b.strip()]
        stories_text = [[line.strip() for line in b.splitlines() if line.strip()] for b in blocks]
        if not stories_text:
            raise DataError(f"{source} holds no sentences")
        return _from_frames(stories_text, source, video_len, text_dim, encoder)
    raise DataError(f"descriptions file '{path}': use .npy (vectors or a CLEVR dict), .json (vectors or sentences) "
                    f"or .txt (sentences, stories separated by blank lines)")


@torch.no_grad()
def draw_stories(generator: torch.nn.Module, descriptions: torch.Tensor, seed: int, device: str | torch.device,
                 batch_size: int = 16) -> torch.Tensor:
    """Stories (N, T, 3, H, W) in [-1, 1] for ``descriptions`` (N, T, D), noise from ``seed``."""
    net = generator.net if hasattr(generator, "net") else generator
    noise = torch.randn(len(descriptions), net.cfg.video_len, net.cfg.noise_dim,
                        generator=torch.Generator().manual_seed(seed))
    out = [generator(descriptions[i:i + batch_size].to(device), noise[i:i + batch_size].to(device)).float().cpu()
           for i in range(0, len(descriptions), batch_size)]
    return torch.cat(out)


@torch.no_grad()
def tell_stories(gen: torch.nn.Module, descriptions: torch.Tensor | np.ndarray | str | Path, seed: int = 0,
                 text_encoder: str | Path | None = None) -> torch.Tensor:
    """Stories (N, T, 3, H, W) in [-1, 1] on the CPU for ``descriptions``: an (N, T, D) array of
    description vectors, or a file as ``ganforge story --descriptions`` reads it (sentences through
    the local ``text_encoder``)."""
    m = gen.model_config
    if isinstance(descriptions, (str, Path)):
        descriptions = read_descriptions(descriptions, m.video_len, m.text_dim, text_encoder)
    descriptions = torch.as_tensor(descriptions, dtype=torch.float32)
    if descriptions.dim() != 3 or tuple(descriptions.shape[1:]) != (m.video_len, m.text_dim):
        raise ValueError(f"descriptions must be (N, {m.video_len}, {m.text_dim}) for this model; "
                         f"got {tuple(descriptions.shape)}")
    return draw_stories(gen, descriptions, seed, next(gen.parameters()).device)
