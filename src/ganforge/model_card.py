"""The model card of a shared model folder: ``README.md`` with YAML front matter, the Hub layout.

Every number on the card is read from the run's own files (its config, checkpoint step and
``eval/step-N.json`` evaluations); nothing is typed by hand. The picture beside the card is the run's
newest sample grid at or before the exported step.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# What the Hub calls each kind of generator (its ``pipeline_tag``)
PIPELINE_TAGS = {"noise": "unconditional-image-generation", "class": "unconditional-image-generation",
                 "translation": "image-to-image", "reference": "image-to-image", "story": "text-to-image"}
CARD_NAME, PICTURE_NAME = "README.md", "samples.png"


@dataclass
class CardFacts:
    """What a card says, all read from the run."""

    family: str
    kind: str
    step: int
    weights: str  # ema | raw | exported
    config: dict[str, Any] = field(default_factory=dict)  # the run's resolved config (empty for an export)
    evaluation: dict[str, Any] | None = None  # the newest eval/step-N.json at or before ``step``
    evaluation_file: str = ""  # its name
    picture: Path | None = None  # the newest samples/step-N.png at or before ``step``


def _steps_at_or_before(folder: Path, pattern: str, step: int) -> list[tuple[int, Path]]:
    """(N, file) for ``folder``'s files named ``step-N[-suffix].ext`` with N <= ``step``, newest first:
    the trainer writes ``step-00001000.json``, ``ganforge evaluate`` ``step-00001000-ema.json``."""
    found = []
    for path in sorted(folder.glob(pattern)) if folder.is_dir() else ():
        match = re.fullmatch(r"step-0*(\d+)(-\w+)?", path.stem)
        if match and int(match.group(1)) <= step:
            found.append((int(match.group(1)), path))
    return sorted(found, key=lambda item: -item[0])


def _evaluation(run_dir: Path, step: int, weights: str) -> tuple[dict[str, Any] | None, str]:
    """The newest evaluation at or before ``step`` (of the exported ``weights`` where there is one)
    and its file name."""
    records = [(json.loads(path.read_text(encoding="utf-8")), path.name)
               for _, path in _steps_at_or_before(run_dir / "eval", "step-*.json", step)]
    return next((r for r in records if r[0].get("weights") == weights), records[0] if records else (None, ""))


def card_facts(family: str, kind: str, opened: Any, weights: str) -> CardFacts:
    """Collect a card's facts from an opened run (``ganforge.run.store.OpenedRun``)."""
    record = opened.record or {}
    step = int(record.get("step", 0))
    facts = CardFacts(family, kind, step, weights, dict(record.get("config") or {}))
    if opened.record is None:  # an export: no run folder to read evaluations or samples from
        return facts
    facts.evaluation, facts.evaluation_file = _evaluation(opened.run_dir, step, weights)
    pictures = _steps_at_or_before(opened.run_dir / "samples", "step-*.png", step)
    facts.picture = pictures[0][1] if pictures else None
    return facts


def front_matter(facts: CardFacts, license_id: str) -> dict[str, Any]:
    """The card's YAML header, in the fields the Hub reads."""
    data = facts.config.get("data", {}).get("name")
    header: dict[str, Any] = {"library_name": "ganforge", "pipeline_tag": PIPELINE_TAGS[facts.kind],
                              "license": license_id, "tags": ["gan", facts.family, "ganforge"]}
    if data:
        header["datasets"] = [data]
    if facts.evaluation:
        header["metrics"] = sorted(facts.evaluation.get("metrics", {}))
    return header


def _metrics_table(evaluation: dict[str, Any], file_name: str) -> list[str]:
    real = evaluation.get("real_vs_real") or {}
    lines = [f"Evaluated at step {evaluation.get('step')} on {evaluation.get('n')} samples "
             f"({evaluation.get('weights', 'ema')} weights; the run's `eval/{file_name}`):", "",
             "| metric | this model | real vs real |", "| --- | --- | --- |"]
    for name, value in evaluation.get("metrics", {}).items():
        floor = real.get(name)
        lines.append(f"| {name} | {value:.4g} | {'-' if floor is None else f'{floor:.4g}'} |")
    return lines


def card_body(facts: CardFacts) -> list[str]:
    """The card's Markdown: what the model is, how it was trained and scored, how to load it."""
    cfg = facts.config
    runtime, train = cfg.get("runtime", {}), cfg.get("train", {})
    lines = [f"# {facts.family} ({facts.kind} generator)", ""]
    if cfg:
        data = ", ".join(f"{k}={v}" for k, v in cfg.get("data", {}).items() if k != "name")
        lines += [f"- Training data: `{cfg.get('data', {}).get('name')}` ({data})",
                  f"- Trained for {facts.step:,} steps of batch {train.get('batch_size')} "
                  f"(seed {runtime.get('seed')}, precision {runtime.get('precision')}); "
                  f"weights: {facts.weights}",
                  f"- Model: `{json.dumps(cfg.get('model', {}), sort_keys=True)}`", ""]
    if facts.picture is not None:
        lines += [f"![samples]({PICTURE_NAME})", ""]
    if facts.evaluation:
        lines += [*_metrics_table(facts.evaluation, facts.evaluation_file), ""]
    else:
        lines += ["No evaluation was recorded.", ""]
    lines += ["## Use", "", "```python", "import ganforge", "",
              'gen = ganforge.load("path/to/this/folder")  # no network needed', "```", "",
              "`ganforge sample`, `ganforge evaluate` and the other verbs take this folder too.", ""]
    return lines


def write_card(out: Path, facts: CardFacts, license_id: str = "other") -> Path:
    """Write ``README.md`` (and the sample picture beside it) into ``out``; returns the card's path."""
    if facts.picture is not None:
        shutil.copyfile(facts.picture, out / PICTURE_NAME)
    header = yaml.safe_dump(front_matter(facts, license_id), sort_keys=False, allow_unicode=True)
    path = out / CARD_NAME
    path.write_text("---\n" + header + "---\n\n" + "\n".join(card_body(facts)), encoding="utf-8")
    return path
