"""Rendering the role templates: whitespace kept as written, undefined names and missing
templates one line naming the template, nothing escaped."""
import pytest

from provision.render import FILES, TemplateError, render


def test_unit_renders_exactly_with_trimmed_blocks_and_final_newline():
    text = render("app.service.j2", name="a<b&c>", user="u", home="/h", bind="10.0.0.1:8080", workers=2,
                  trusted="127.0.0.1")
    lines = text.splitlines()
    assert "Description=provision backend app a<b&c> (10.0.0.1:8080)" in lines
    assert text.endswith("\n") and "{%" not in text and "{{" not in text and "\n\n\n" not in text
    assert not [line for line in lines if line != line.rstrip()]


def test_undefined_name_is_one_line_naming_the_template():
    with pytest.raises(TemplateError) as err:
        render("app.service.j2", name="a")
    assert str(err.value) == f"{FILES / 'app.service.j2'}: 'bind' is undefined"


def test_missing_template():
    with pytest.raises(TemplateError) as err:
        render("nope.j2")
    assert str(err.value) == f"{FILES / 'nope.j2'}: template not found"


def test_syntax_error_names_the_line(tmp_path, monkeypatch):
    import provision.render as r
    (tmp_path / "bad.j2").write_text("ok\n{% if %}\n")
    monkeypatch.setattr(r, "FILES", tmp_path)
    r._env.cache_clear()
    try:
        with pytest.raises(TemplateError) as err:
            render("bad.j2")
        assert str(err.value).startswith(f"{tmp_path / 'bad.j2'}: line 2: ")
    finally:
        r._env.cache_clear()
