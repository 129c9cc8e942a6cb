"""Student text on its way out: one encoder per output form.

Whatever a submission controls (file names, prints, notebook error names and
values, ``nn.Module`` class and attribute names, Moodle folder names) may be
shown to a TA or a student. It leaves the grader only through these
functions, one per form:

- HTML: ``&<>"'`` as entities, by Jinja2's autoescape in every template of
  ``jinja_env`` (whatever the template's name), after the ``text_block`` clean-up
  (no escape sequences, controls, bidi overrides); ``moodle_feedback`` for the
  feedback comments Moodle shows as HTML;
- ``markdown``: one line of inert text (``report.md``): no raw HTML, links,
  images, autolinks, emphasis or table breaks; ``md_code`` and ``md_fence``
  for text shown inside a code span or a fenced block;
- ``terminal``: no escape sequences (CSI, OSC, ...), C0/C1 controls, bidi
  overrides; a newline or carriage return in a one-line field is shown as
  ``⏎``, so nothing can move the cursor, set a title or fake a line;
  ``rich_text`` also escapes rich's ``[markup]`` so brackets are printed;
- ``csv_cell``: a cell a spreadsheet never runs as a formula (OWASP: a
  leading ``'`` before ``= + - @`` tab, CR);
- ``file_name``: one path component within the file system's 255 bytes;
  ``short``: a name cut to its start and end for a one-line message;
- tracebacks the grader prints: ``traceback_text``;
- Gradescope ``output`` is plain text (``output_format = "text"``), the
  ``terminal`` form with newlines kept.
"""

from __future__ import annotations

import hashlib
import html
import re
import traceback
from typing import Any

import jinja2
import markupsafe
from rich.markup import escape as _rich_escape

# ESC-introduced sequences: CSI (ESC [ ... final), OSC/DCS/SOS/PM/APC strings (up to
# BEL or ST), and two-byte escapes. C1 introducers (U+009B CSI, U+009D OSC, ...) too.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[\x20-\x3f]*[\x40-\x7e]?"  # CSI
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, ...
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"  # other escapes
)
_NEWLINES = re.compile(r"\r\n|[\r\n\x0b\x0c\x85\u2028\u2029]")
# C0 and C1 controls except tab and newline (newlines are decided by the caller), DEL,
# and the bidirectional formatting characters that reorder what a reader sees.
# Invisible characters that hide or smuggle text go too: zero-width space, word joiner and
# invisible operators, BOM, interlinear annotations, Unicode tag characters (U+E0000 block).
_CONTROLS = re.compile(
    r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069"
    r"\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)
NEWLINE_MARK = "⏎"

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~!#&{}])")
_MD_AUTOLINK = re.compile(r"(?i)(://)|\b(www)\.|(@)")
NAME_BYTES = 255  # one path component on Linux file systems


def _plain(text: Any, one_line: bool) -> str:
    text = _ESCAPES.sub("", utf8(str(text)))
    text = _NEWLINES.sub(f" {NEWLINE_MARK} " if one_line else "\n", text)
    text = _CONTROLS.sub("", text)
    return text.replace("\t", " ") if one_line else text


def terminal(text: Any, one_line: bool = True) -> str:
    """Printable text for a terminal: no control sequences; one line unless asked."""
    return _plain(text, one_line)


def rich_text(text: Any, one_line: bool = True) -> str:
    """``terminal`` text for rich to print: its ``[markup]`` is shown, not applied."""
    return _rich_escape(terminal(text, one_line))


def text_block(text: Any) -> str:
    """Plain text of several lines (Gradescope ``text`` output, ``<pre>`` blocks)."""
    return _plain(text, one_line=False)


def traceback_text() -> str:
    """The exception being handled, as a traceback for stderr or a log: its message may
    carry student bytes (a key, a file name) that would otherwise reach the terminal raw."""
    return text_block(traceback.format_exc())


def markdown(text: Any) -> markupsafe.Markup:
    """One line of Markdown that renders exactly as ``text``, inert."""
    line = _plain(text, one_line=True)
    line = _MD_SPECIAL.sub(r"\\\1", line)
    line = _MD_AUTOLINK.sub(lambda m: ":\\/\\/" if m[1] else (f"{m[2]}\\." if m[2] else "\\@"), line)
    return markupsafe.Markup(line)


def md_code(text: Any) -> markupsafe.Markup:
    """Text for inside a Markdown code span in a table: no backtick ends it early."""
    line = _plain(text, one_line=True).replace("`", "'").replace("|", "\\|")
    return markupsafe.Markup(line)


def md_fence(text: Any) -> markupsafe.Markup:
    """Text for inside a fenced block: no line closes the fence."""
    return markupsafe.Markup(re.sub(r"`{3,}|~{3,}", "'''", text_block(text)))


def _html_finalize(value: Any) -> Any:
    """Every ``{{ }}`` of an HTML template, before autoescape: no escape sequences, C0/C1
    controls or bidi overrides (``report\u202efdp.exe`` would read as ``reportexe.pdf``);
    line breaks kept for ``<pre>`` blocks."""
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return text_block(value)
    return value


def _md_finalize(value: Any) -> Any:
    """Every ``{{ }}`` of a Markdown template: escaped unless a filter already did."""
    if value is None or isinstance(value, (markupsafe.Markup, int, float)):
        return value
    return markdown(value)


def jinja_env(loader: jinja2.BaseLoader, markdown: bool = False, **filters: Any) -> jinja2.Environment:
    """An environment whose every ``{{ }}`` is escaped for its form: HTML (autoescape,
    whatever the template's name) or, with ``markdown``, Markdown. Filters ``md_code``
    and ``md_fence`` mark text for code spans and fenced blocks."""
    if markdown:
        env = jinja2.Environment(
            loader=loader, autoescape=False, keep_trailing_newline=True, finalize=_md_finalize
        )
    else:
        env = jinja2.Environment(
            loader=loader, autoescape=True, keep_trailing_newline=True, finalize=_html_finalize
        )
    env.filters.update({"md_code": md_code, "md_fence": md_fence, **filters})
    return env


def csv_cell(text: Any) -> str:
    """A spreadsheet cell that is data, never a formula (OWASP CSV injection)."""
    cell = str(text)
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def moodle_feedback(text: Any) -> str:
    """A Moodle feedback comment: Moodle shows it as HTML; one line, escaped, no formula."""
    return csv_cell(html.escape(terminal(text), quote=False))


def utf8(text: str) -> str:
    """``text`` with what is not UTF-8 (a file name's undecodable bytes, which Python
    keeps as lone surrogates) replaced by U+FFFD, so every writer can encode it."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


def short(name: Any, limit: int = 160) -> str:
    """A student's name or path for a one-line message: its start and end around ``…``
    when longer than ``limit`` characters (a 10 KB file name is not worth 10 KB of note)."""
    text = utf8(str(name))
    if len(text) <= limit:
        return text
    half = (limit - 1) // 2
    return f"{text[:half]}…{text[-half:]}"


def file_name(name: str, limit: int = NAME_BYTES) -> str:
    """``name`` as one valid UTF-8 path component within ``limit`` bytes. A longer name
    keeps its start and its last characters (the suffix, Moodle's
    ``_<id>_assignsubmission_file``) with a short hash of the whole name between them,
    so shortened names stay distinct."""
    name = utf8(name)
    raw = name.encode()
    if len(raw) <= limit:
        return name
    tag = "~" + hashlib.sha256(raw).hexdigest()[:10]
    tail = name[-40:]
    while len(tail.encode()) > limit // 2:
        tail = tail[1:]
    room = limit - len(tag) - len(tail.encode())
    head = name[: len(name) - len(tail)].encode()[:room]
    return head.decode("utf-8", "ignore") + tag + tail
