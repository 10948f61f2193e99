"""Text -> lark tree. Syntax errors become diagnostics with a span and a help line.

Parsing stops at the first syntax error (an LALR parser cannot guess what was meant); the
message names the construct still open when the file ends early.
"""

from __future__ import annotations

import functools
import re
from contextvars import ContextVar
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from molspec.diagnostics import Diagnostic, Label, MolspecError, Span

# Known mistakes, recognised by the parser state they leave (lark's `match_examples`):
# code -> (message, help, examples that fail in the same state with the same token).
SYNTAX_ERRORS: dict[str, tuple[str, str, list[str]]] = {
    "MOL005": ("expected '=' after a property name",
               "write properties as `key = value`, e.g. `samples = 100`",
               ['dataset "x" { samples 3 }', 'dataset "x" { samples "a" }', 'dataset "x" { samples 1.5 }',
                'dataset "x" { samples [1] }', 'output { think true }', 'output { think false }',
                'answer { verify "math" }']),
    "MOL006": ("':' is not an assignment in .mol", "write properties as `key = value`, not `key: value`",
               ['dataset "x" { samples: 3 }', 'model m { seed: 3 }']),
    "MOL007": ("a graph edge needs a probability", "write each edge as `target weight`, e.g. `deep 0.5`",
               ["graph g { a -> b | c 0.5 }", "graph g { a -> b }", "graph g { a -> b c 0.5 }",
                "graph g { a -> b -> c }"]),
    "MOL008": ("edges in a row are separated by '|'", "write `a -> b 0.5 | c 0.5`, not commas",
               ["graph g { a -> b 0.5, c 0.5 }", "graph g { a -> b 0.5; c 0.5 }"]),
    "MOL009": ("a bond needs a kind", "write `bond NAME : KIND \"Title\" { ... }`; kinds: covalent, hydrogen, "
               "vdw, plain", ['bond deep "Deep" { }', "bond deep { }"]),
    "MOL010": ("a top-level item must start with a keyword",
               "items are: use, dataset, source, model, bond, graph, template, answer, output, fidelity, variant",
               ["foo { }", "molspec 1 foo = 3", "samples = 3", 'dataset "x" { } foo']),
    "MOL015": ("a block is written without '='", "write `options { ... }`, not `options = { ... }`",
               ['model m { options = { } }', 'dataset "x" { split train = { } }']),
    "MOL016": ("properties are separated by spaces or new lines, not commas",
               "write `{ samples = 100  seed = 7 }` or one property per line",
               ['dataset "x" { samples = 1, seed = 2 }', 'output { think = true, }']),
}

_TOKEN_NAMES = {
    "$END": "end of file", "NAME": "a name", "NUMBER": "a number", "STRING": "a string",
    "LONG_STRING": 'a """string"""', "LBRACE": "'{'", "RBRACE": "'}'", "LPAR": "'('", "RPAR": "')'",
    "LSQB": "'['", "RSQB": "']'", "EQUAL": "'='", "COLON": "':'", "COMMA": "','", "VBAR": "'|'",
    "__ANON_0": "'->'", "__ANON_1": "'..'",
}
_OPENERS = {"{": "}", "(": ")", "[": "]"}


@functools.cache
def grammar() -> str:
    """The text of the .mol grammar: `molspec/grammars/mol.lark` in an installed molspec (the wheel maps
    the repository's top-level `grammars/` there), else `grammars/mol.lark` of the source checkout."""
    shipped = resources.files("molspec") / "grammars" / "mol.lark"
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parents[2] / "grammars" / "mol.lark").read_text(encoding="utf-8")


@functools.cache
def parser() -> Lark:
    """The LALR parser, built once."""
    return Lark(grammar(), parser="lalr", propagate_positions=True, maybe_placeholders=True)


def parse(text: str, file: str = "<string>", comments: list[Token] | None = None) -> Tree[Token]:
    """Parse .mol text. Comment tokens are appended to `comments` when it is given.

    Raises:
        MolspecError: with one syntax diagnostic.
    """
    too_deep = _too_deep(text, file)
    if too_deep is not None:
        raise MolspecError([too_deep], {file: text})
    p = parser() if comments is None else _comment_parser()
    sink = _COMMENTS.set(comments)
    try:
        return p.parse(text, on_error=_keyword_as_name)
    except UnexpectedInput as exc:
        raise MolspecError([_diagnostic(exc, text, file, p)], {file: text}) from None
    finally:
        _COMMENTS.reset(sink)


MAX_NESTING = 64  # brackets inside brackets; the tree builder and the formatter recurse on them
_BRACKETS = re.compile(r'"""(?:.|\n)*?"""|"(?:[^"\\\n]|\\.)*"|#[^\n]*|[{}()\[\]]')


def _too_deep(text: str, file: str) -> Diagnostic | None:
    """MOL020 at the first bracket nested deeper than MAX_NESTING (skipping strings and comments)."""
    depth = 0
    for m in _BRACKETS.finditer(text):
        ch = m.group()
        if ch in "{([":
            depth += 1
            if depth > MAX_NESTING:
                return Diagnostic("MOL020", f"brackets nest more than {MAX_NESTING} deep",
                                  Label(Span.at(file, text, m.start(), m.end()), "too deep here"),
                                  help="flatten the value; a spec never needs this depth")
        elif len(ch) == 1 and ch in "})]":
            depth = max(0, depth - 1)
    return None


def _keyword_as_name(exc: UnexpectedInput) -> bool:
    """Re-read a keyword as a name where only a name fits, and go on parsing.

    After a string or number the LALR tables merge the lookaheads of every context, so the contextual
    lexer also offers the item keywords there: in `{ license = "mit"  model = m }` the word `model`
    comes out as the keyword, and only the parser learns that a property name was meant.
    """
    if not isinstance(exc, UnexpectedToken) or exc.interactive_parser is None:
        return False
    tok = exc.token
    if tok.type == "NAME" or "NAME" not in (exc.accepts or ()) or not _NAME_RE.fullmatch(str(tok)):
        return False
    exc.interactive_parser.feed_token(Token.new_borrow_pos("NAME", str(tok), tok))
    return True


_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# Where the comment parser puts the comments of the parse in progress (lexer callbacks are fixed
# when a parser is built, so the one cached parser appends to a per-context list).
_COMMENTS: ContextVar[list[Token] | None] = ContextVar("molspec_comments", default=None)


def _collect_comment(tok: Token) -> Token:
    sink = _COMMENTS.get()
    if sink is not None:
        sink.append(tok)
    return tok


@functools.cache
def _comment_parser() -> Lark:
    """The parser for the formatter: the same grammar, with comments handed to `_collect_comment`."""
    return Lark(grammar(), parser="lalr", propagate_positions=True, maybe_placeholders=True,
                lexer_callbacks={"COMMENT": _collect_comment})


def _diagnostic(exc: UnexpectedInput, text: str, file: str, p: Lark) -> Diagnostic:
    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(exc, text, file)
    assert isinstance(exc, (UnexpectedToken, UnexpectedEOF))
    tok = getattr(exc, "token", None)
    if isinstance(exc, UnexpectedEOF) or (tok is not None and tok.type == "$END"):
        return _early_end(text, file)
    assert isinstance(exc, UnexpectedToken)
    span = Span.from_token(file, exc.token)
    unmatched = _unmatched_closer(exc, text, file)
    if unmatched is not None:
        return unmatched
    known = _match_known(exc, p)
    if known:
        message, help_ = SYNTAX_ERRORS[known][:2]
        return Diagnostic(known, message, Label(span, f"unexpected {_describe(exc.token)}"), help=help_)
    expected = sorted({_TOKEN_NAMES.get(t, repr(t.lower())) for t in exc.accepts or exc.expected})
    return Diagnostic("MOL002", f"unexpected {_describe(exc.token)}", Label(span, "not expected here"),
                      help="expected " + _one_of(expected))


def _match_known(exc: UnexpectedToken, p: Lark) -> str | None:
    """The code of the SYNTAX_ERRORS example that fails in the same parser state, preferring one that
    fails on the same kind of token.

    Only the top of the LALR stack is compared (lark's `match_examples` also compares the stack
    depth, which changes with the version line and with how many items or properties came before).
    """
    fallback = None
    for code, state, accepts, token_type in _example_errors(p):
        if state != exc.state.position or accepts != exc.accepts:
            continue
        if token_type == exc.token.type:
            return code
        fallback = fallback or code
    return fallback


@functools.cache
def _example_errors(p: Lark) -> tuple[tuple[str, int, frozenset[str], str], ...]:
    """How each example fails in `p` (state numbers differ between two builds of the same grammar)."""
    out = []
    for code, (_, _, examples) in SYNTAX_ERRORS.items():
        for example in examples:
            try:
                p.parse(example)
            except UnexpectedToken as ut:
                out.append((code, ut.state.position, frozenset(ut.accepts or ()), ut.token.type))
            except UnexpectedInput:
                continue
    return tuple(out)


def _bad_character(exc: UnexpectedCharacters, text: str, file: str) -> Diagnostic:
    pos = exc.pos_in_stream or 0
    span = Span.at(file, text, pos, pos + 1)
    char = text[pos] if pos < len(text) else ""
    if char == '"':
        triple = text.startswith('"""', pos)
        end = text.find("\n", pos)
        span = Span.at(file, text, pos, len(text) if end == -1 else end)
        return Diagnostic("MOL003", "unterminated string", Label(span, "this string is never closed"),
                          help='close it with """' if triple else
                          'close it with " on the same line, or use """ for text over several lines')
    return Diagnostic("MOL001", f"unexpected character {char!r}", Label(span, "not part of the language"),
                      help="names are letters, digits and _; strings go in double quotes")


def _early_end(text: str, file: str) -> Diagnostic:
    stripped = len(text.rstrip())
    span = Span.at(file, text, max(0, stripped - 1), stripped)
    opener = _innermost_open(text)
    if opener is None:
        return Diagnostic("MOL004", "unexpected end of file", Label(span, "the file ends here"),
                          help="an item is incomplete; see docs/language.md for its form")
    pos, char, what = opener
    open_span = Span.at(file, text, pos, pos + 1)
    return Diagnostic("MOL004", f"unexpected end of file: '{char}' of {what} is never closed",
                      Label(span, "the file ends here"), secondary=(Label(open_span, "opened here"),),
                      help=f"add '{_OPENERS[char]}' to close {what}")


_SKIP = re.compile(r'"""(.|\n)*?"""|"([^"\\\n]|\\.)*"|#[^\n]*')


def _scan(text: str, stop: int | None = None) -> tuple[list[int], tuple[int, int] | None]:
    """Brackets of text[:stop], skipping strings and comments: the offsets of those still open, and
    the (open, close) offsets of the last pair closed."""
    stack: list[int] = []
    last: tuple[int, int] | None = None
    end = len(text) if stop is None else stop
    i = 0
    while i < end:
        m = _SKIP.match(text, i)
        if m:
            i = m.end()
            continue
        ch = text[i]
        if ch in _OPENERS:
            stack.append(i)
        elif ch in ")]}" and stack:
            last = (stack.pop(), i)
        i += 1
    return stack, last


def _construct(text: str, pos: int) -> str:
    """What the bracket at `pos` opens, from the words before it on its line: `graph qwq`."""
    line_start = text.rfind("\n", 0, pos) + 1
    head = text[line_start:pos].split()
    return f"`{' '.join(head[:2])}`" if head else "this block"


def _innermost_open(text: str) -> tuple[int, str, str] | None:
    """The innermost unclosed bracket, skipping strings and comments, with what it opens."""
    stack, _ = _scan(text)
    if not stack:
        return None
    pos = stack[-1]
    return pos, text[pos], _construct(text, pos)


def _unmatched_closer(exc: UnexpectedToken, text: str, file: str) -> Diagnostic | None:
    """MOL011 when the unexpected token is a closing bracket with nothing open before it."""
    tok = exc.token
    if tok.type not in ("RBRACE", "RPAR", "RSQB") or tok.start_pos is None:
        return None
    stack, last = _scan(text, tok.start_pos)
    if stack:
        return None
    secondary: tuple[Label, ...] = ()
    if last is not None:
        what = _construct(text, last[0])
        secondary = (Label(Span.at(file, text, last[1], last[1] + 1), f"{what} is already closed here"),)
    return Diagnostic("MOL011", f"unmatched '{tok}'", Label(Span.from_token(file, tok), "closes nothing"),
                      secondary=secondary, help="remove it, or move the earlier closing bracket here")


def _describe(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type == "STRING":
        return f"string {tok}"
    if tok.type in ("NAME", "NUMBER"):
        return f"{'name' if tok.type == 'NAME' else 'number'} {str(tok)!r}"
    return repr(str(tok))


def _one_of(items: list[str]) -> str:
    if len(items) > 8:
        return "one of " + ", ".join(items[:8]) + ", ..."
    return items[0] if len(items) == 1 else "one of " + ", ".join(items)
