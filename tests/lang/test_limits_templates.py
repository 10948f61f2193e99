"""Issue 10 item 7: templates cannot hang or exhaust memory, and fail with a located diagnostic.

Each reproducer hung `molspec check` (or allocated gigabytes) before the sandbox was bounded.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

import molspec
from molspec.diagnostics import Span
from molspec.templating import TemplateRenderError, render_template

HANGS = {
    "power folded at compile time": "{{ 3 ** 999999999 }}",
    "nested loops over a repeated question": "{% for a in question*100000 %}{% for b in question*100000 %}x"
                                             "{% endfor %}{% endfor %}",
    "lipsum": "{{ lipsum(10**6) }}",
    "string repetition": "{{ 'a' * 10**9 }}",
    "list repetition": "{{ [0] * 10**9 }}",
    "nested ranges without output": "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
    "huge range": "{% for a in range(10**9) %}{% endfor %}",
    "filter width": "{{ question|center(10**9) }}",
    "str method width": "{{ question.ljust(10**9) }}",
    "format width": "{{ '{:>999999999}'.format(1) }}",
    "percent width": "{{ '%999999999d' % 1 }}",
    "recursive macro": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "exponential macro": "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "output over the size cap": "{% for a in range(10000) %}{% for b in range(200) %}{{ question }}{% endfor %}"
                                "{% endfor %}",
    "parentheses 500 deep": "{{ " + "(" * 500 + "1" + ")" * 500 + " }}",
    "blocks 300 deep": "{% if true %}" * 300 + "x" + "{% endif %}" * 300,
    "loops 39 deep": "{% for a in [1] %}" * 39 + "x" + "{% endfor %}" * 39,
}


def spec_with_step(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "spec.mol"
    path.write_text(f'molspec 1\n\ntemplate step """\n{body}\n"""\n', encoding="utf-8")
    return path


@pytest.mark.timeout(20)
@pytest.mark.parametrize("template", HANGS.values(), ids=HANGS.keys())
def test_check_refuses_a_template_that_would_hang(tmp_path: Path, template: str) -> None:
    doc = molspec.load(spec_with_step(tmp_path, template))
    codes = [d.code for d in doc.diagnostics if d.is_error]
    assert codes == ["MOL306"], [d.message for d in doc.diagnostics]
    assert doc.diagnostics[0].span.line >= 3  # at the template (or the line in it), not at the top of the file


@pytest.mark.timeout(20)
@pytest.mark.parametrize("template", HANGS.values(), ids=HANGS.keys())
def test_render_refuses_a_template_that_would_hang(template: str) -> None:
    with pytest.raises(TemplateRenderError) as err:
        render_template(template, {"question": "What is 1 + 1?"}, "step")
    assert err.value.diagnostics[0].code == "MOL306"


def test_ordinary_arithmetic_and_formatting_still_work() -> None:
    out = render_template("{{ 2 ** 10 }} {{ 'ab' * 3 }} {{ '%5d' % 3 }} {{ '{:>4}'.format(7) }} {{ range(3)|list }}"
                          " {{ question|center(20) }}", {"question": "q"})
    assert out == "1024 ababab     3    7 [0, 1, 2] " + "q".center(20)


def test_check_renders_later_samples_and_steps(tmp_path: Path) -> None:
    """A field used only when `sample > 0` was found by the build, not by check."""
    path = spec_with_step(tmp_path, "{{ question }}\n{% if sample > 0 %}{{ bond.nope }}{% endif %}\n"
                                    "{{ bond.instruct }}")
    diags = molspec.load(path).diagnostics
    assert [(d.code, d.span.line, d.span.col) for d in diags if d.is_error] == [("MOL305", 5, 27)]
    assert "sample 1" in diags[0].message


def test_check_renders_the_first_step_with_no_steps(tmp_path: Path) -> None:
    path = spec_with_step(tmp_path, "{{ question }} {{ steps[-1].text }} {{ bond.instruct }}")
    (d,) = [d for d in molspec.load(path).diagnostics if d.is_error]
    assert d.code == "MOL305" and "first step" in d.message


def test_undefined_name_in_a_branch_is_caught(tmp_path: Path) -> None:
    path = spec_with_step(tmp_path, "{{ question }}{% if sample > 0 %}{{ undefined }}{% endif %}")
    assert [d.code for d in molspec.load(path).diagnostics if d.is_error] == ["MOL302"]


def test_a_render_error_names_the_template_and_its_line() -> None:
    text = 'molspec 1\ntemplate step """\n{{ question }}\n{{ bond.nope }}\n"""\n'
    span = Span.at("spec.mol", text, text.index('"""'), text.rindex('"""') + 3)
    with pytest.raises(TemplateRenderError) as err:
        render_template("{{ question }}\n{{ bond.nope }}\n", {"question": "q", "bond": {}}, "step", span,
                        {"spec.mol": text})
    e = err.value
    assert (e.template, e.span.file, e.span.line, e.diagnostics[0].code) == ("step", "spec.mol", 4, "MOL305")
    assert "nope" in e.reason and "spec.mol:4:1" in e.render()
    again = pickle.loads(pickle.dumps(e))
    assert (again.template, again.reason, again.span) == (e.template, e.reason, e.span)


def test_a_render_error_without_a_span_still_names_the_template() -> None:
    with pytest.raises(TemplateRenderError) as err:
        render_template("{{ nope }}", {}, "answer")
    assert err.value.span.file == "<answer template>" and err.value.template == "answer"


def test_the_answer_template_is_rendered_after_whole_walks(tmp_path: Path) -> None:
    """An answer always follows at least one step, so `steps[-1]` is fine there; a branch on later
    samples is still rendered."""
    path = tmp_path / "spec.mol"
    path.write_text('molspec 1\n\ntemplate answer """\n{{ question }} {{ steps[-1].text }} {{ instruct }}\n"""\n',
                    encoding="utf-8")
    assert not [d for d in molspec.load(path).diagnostics if d.is_error]
    path.write_text('molspec 1\n\ntemplate answer """\n{% if sample > 0 %}{{ steps[0].nope }}{% endif %}\n"""\n',
                    encoding="utf-8")
    (d,) = [d for d in molspec.load(path).diagnostics if d.is_error]
    assert d.code == "MOL305" and "sample 1" in d.message
