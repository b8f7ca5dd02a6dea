"""`qa info`: a description of the live index."""
from __future__ import annotations

from pathlib import Path

from qa import layout
from qa.config import Settings
from qa.errors import QAError


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _last_build(manifest: dict) -> str:
    build = manifest.get("build")
    if not build:
        return "?"
    again = f", {build['reembedded']} re-embedded" if build.get("reembedded") else ""
    return (
        f"{'full, ' if build.get('full') else ''}{build['added']} added, "
        f"{build['changed']} changed, {build['removed']} removed, {build['kept']} kept{again}; "
        f"{build['embedded_passages']} passages embedded"
    )


def _health(path: Path) -> str:
    """"ok", or the damage a reader would report (no model is loaded for this)."""
    from qa.generation import Generation

    try:
        Generation.open(path).close()
    except QAError as exc:
        return f"DAMAGED: {exc}"
    return "ok"


def index_info(settings: Settings) -> str:
    """Generation, model, counts, corpus folder, size on disk, build time (no model load).

    Raises:
        IndexMissingError: nothing has been built in `settings.index_dir`.
        IndexCorruptError: CURRENT or the live manifest is missing or unreadable.
    """
    index_dir = settings.index_dir
    name = layout.read_current(index_dir)
    path = index_dir / name
    manifest = layout.read_manifest(path)
    counts = manifest["counts"]
    others = [g for g in layout.generations(index_dir) if g != name]
    temps = layout.stray_temps(index_dir)
    rows = [
        ("index", str(path)),
        ("generation", name),
        ("model", f"{manifest['model']['id']} (dim {manifest['model']['dim']}, "
                  f"fingerprint {manifest['model']['fingerprint']})"),
        ("articles", str(counts["articles"])),
        ("passages", str(counts["passages"])),
        ("sentences", str(counts["sentences"])),
        ("faiss", manifest.get("faiss", {}).get("factory", "?")),
        ("chunker", ", ".join(f"{k}={v}" for k, v in manifest["chunker"].items())),
        ("corpus", manifest.get("corpus_dir", "?")),
        ("size on disk", f"{folder_bytes(path) / 2**20:.1f} MiB"),
        ("built", f"{manifest.get('built_at', '?')} in {manifest.get('build_seconds', '?')} s"),
        ("last build", _last_build(manifest)),
        ("health", _health(path)),
    ]
    if others or temps:
        extra = sum(folder_bytes(index_dir / n) for n in others + temps)
        rows.append(("also on disk", f"{', '.join(others + temps)} ({extra / 2**20:.1f} MiB; "
                     "the previous generation is kept one build longer for running readers)"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
