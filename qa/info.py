"""`qa info`: a description of the live index."""
from __future__ import annotations

from qa import layout
from qa.config import Settings


def folder_bytes(path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def index_info(settings: Settings) -> str:
    """Generation, model, counts, corpus folder, size on disk, build time (no model load)."""
    name = layout.read_current(settings.index_dir)
    path = settings.index_dir / name
    manifest = layout.read_manifest(path)
    counts = manifest["counts"]
    rows = [
        ("index", str(path)),
        ("generation", name),
        ("model", f"{manifest['model']['id']} (dim {manifest['model']['dim']}, "
                  f"fingerprint {manifest['model']['fingerprint']})"),
        ("articles", str(counts["articles"])),
        ("passages", str(counts["passages"])),
        ("sentences", str(counts["sentences"])),
        ("faiss", manifest["faiss"]["factory"]),
        ("chunker", ", ".join(f"{k}={v}" for k, v in manifest["chunker"].items())),
        ("corpus", manifest.get("corpus_dir", "?")),
        ("size on disk", f"{folder_bytes(path) / 2**20:.1f} MiB"),
        ("built", f"{manifest.get('built_at', '?')} in {manifest.get('build_seconds', '?')} s"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
