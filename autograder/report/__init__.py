"""Writers: Gradescope results.json, Markdown and HTML reports."""

from .write import write_all

__all__ = ["write_all"]
