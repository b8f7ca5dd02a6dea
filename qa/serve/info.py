"""`qa info`: a description of the live index, and its health, without loading the model."""
from __future__ import annotations

from pathlib import Path

from qa.config import Settings
from qa.errors import QAError
from qa.index import layout
from qa.index.manifest import BuildStats, embedded_phrase, read_manifest


def folder_bytes(path: Path) -> int:
    """Bytes of the files under `path`; links are not followed (nor counted)."""
    return sum(p.lstat().st_size for p in path.rglob("*")
               if not p.is_symlink() and p.is_file())


def describe_build(build: BuildStats, passage_vectors: str) -> str:
    again = f", {build.reembedded} re-embedded" if build.reembedded else ""
    return (
        f"{'full, ' if build.full else ''}{build.added} added, {build.changed} changed, "
        f"{build.removed} removed, {build.kept} kept{again}; "
        f"{embedded_phrase(build.embedded_passages, build.embedded_sentences, passage_vectors)}"
    )


def health(path: Path) -> str:
    """"ok", or the damage a reader would report; every file's checksum is verified."""
    from qa.index.generation import Generation

    try:
        Generation.open(path, checksums=True).close()
    except QAError as exc:
        return f"DAMAGED: {exc}"
    return "ok"


def reader_status(settings: Settings) -> str:
    """The reader's state: on with its fingerprint and size, off, or why it cannot run."""
    if not settings.reranker:
        return "off (--rerank off or VERBATIM_RERANK=off)"
    from qa.errors import ReaderError
    from qa.reader.model import GRAPH, MODEL_DIR, verify
    from qa.reader.rerank import ReadingPlan

    folder = settings.reader_model or MODEL_DIR
    try:
        info = verify(folder)
    except ReaderError as exc:
        return f"UNAVAILABLE: {exc}; answers fall back to the plain ranking"
    size = (folder / GRAPH).stat().st_size / 2**20
    where = "" if folder == MODEL_DIR else f" from {folder}"
    plan = ReadingPlan(sentences=settings.reader_sentences)  # as open_reranker reads
    return (f"on{where}: {info.base_model} cross-encoder, {info.precision} ONNX, "
            f"{size:.1f} MiB, "
            f"fingerprint {info.fingerprint}, reads up to {plan.sentences} sentences"
            + (f" ({min(plan.first_read, plan.sentences)}, the rest when unsure)"
               if plan.sure_from is not None else "")
            + (", only the first passage's when the first ranking leads and the reader "
               "agrees" if plan.lead_from is not None else "")
            + (", a sentence that leans on the one before read with it" if plan.antecedents
               else ""))


def index_info(settings: Settings) -> str:
    """Generation, model, counts, corpus folder, size on disk, build time (no model load).

    Raises:
        IndexMissingError: nothing has been built in `settings.index_dir`.
        IndexCorruptError: CURRENT or the live manifest is missing or unreadable.
    """
    index_dir = settings.index_dir
    name = layout.read_current(index_dir)
    path = index_dir / name
    manifest = read_manifest(path)
    counts, model = manifest.counts, manifest.model
    others = [g for g in layout.generations(index_dir) if g != name]
    temps = layout.stray_temps(index_dir)
    rows = [
        ("index", str(path)),
        ("generation", name),
        ("model", f"{model.id} (dim {model.dim}, fingerprint {model.fingerprint}, "
                  f"{model.precision}, sentence vectors {model.sentence_vectors}, "
                  f"passage vectors {model.passage_vectors})"),
        ("articles", str(counts.articles)),
        ("passages", str(counts.passages)),
        ("sentences", str(counts.sentences)),
        ("dense", f"{manifest.dense.backend} {manifest.dense.factory}"),
        ("chunker", ", ".join(f"{k}={getattr(manifest.chunker, k)}"
                              for k in manifest.chunker.__slots__)),
        ("corpus", manifest.corpus_dir),
        ("size on disk", f"{folder_bytes(path) / 2**20:.1f} MiB"),
        ("built", f"{manifest.built_at} in {manifest.build_seconds} s"),
        ("last build", describe_build(manifest.build, model.passage_vectors)),
        ("health", health(path)),
        ("reader", reader_status(settings)),
    ]
    if others or temps:
        extra = sum(folder_bytes(index_dir / n) for n in others + temps)
        rows.append(("also on disk", f"{', '.join(others + temps)} ({extra / 2**20:.1f} MiB; "
                     "the previous generation is kept one build longer for running readers)"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
