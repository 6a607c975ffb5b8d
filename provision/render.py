"""Render the templates in files/ with Jinja2. Pure: text in, text out. Jinja2 keeps each
template's compiled code in its per-user cache folder (a FileSystemBytecodeCache, checked
against the template's source), so that a run does not compile the templates again."""
from __future__ import annotations

from functools import lru_cache

from .data import TEMPLATES as FILES


class TemplateError(Exception):
    """A template failed to render; the message names the template and the line."""


@lru_cache(maxsize=1)
def _env():
    # lazy: jinja2 costs ~26 ms of start-up, needed only when a template renders
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(FILES)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False,
                             bytecode_cache=jinja2.FileSystemBytecodeCache())
    # A Python string literal for a value (tojson would write "\ud83d\ude00" for an emoji, which
    # Python reads as two lone surrogates that cannot be encoded back to UTF-8).
    env.filters["python"] = lambda value: repr(str(value))
    return env


def render(template: str, **context) -> str:
    # lazy: jinja2 costs ~26 ms of start-up, needed only when a template renders
    import jinja2
    try:
        return _env().get_template(template).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{FILES / template}: line {exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{FILES / template}: {exc.message}") from None
    except jinja2.TemplateNotFound:
        raise TemplateError(f"{FILES / template}: template not found") from None
