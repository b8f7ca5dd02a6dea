"""Text: corpus files -> cleaned Articles -> sentence-aligned passages (the write side)."""
