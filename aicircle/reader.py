"""Read a model file into PySD's AbstractModel: the one reader of ``load`` and ``export_xmile``.

A model file is untrusted input (docs/design.md §1): reading it writes nothing
and runs no code from it. PySD's translators would hand lookup ranges and
literal lists to Python's ``eval``; here they get a literal-only stand-in. An
XMILE file is checked before PySD reads it: no XML entities or external DTD,
and no variable silently dropped by PySD's recovering XML parser.
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
import threading
import warnings
from pathlib import Path

from . import _limits
from .errors import ModelReadError, ResourceLimit, UnsupportedFeature

__all__ = ["fold_arithmetic", "read"]

_MODEL_SUFFIXES = {".mdl": "vensim", ".xmile": "xmile", ".xml": "xmile", ".stmx": "xmile"}


def read(path):
    """Parse a ``.mdl`` or XMILE (``.xmile``, ``.xml``, ``.stmx``) model file, writing nothing.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    pysd.translators.structures.abstract_model.AbstractModel

    Raises
    ------
    ModelReadError
        The file is missing, unreadable, empty or not a model PySD can read; it
        has code where only a literal may stand; an XMILE file declares
        entities or an external DTD, would lose variables to broken XML, or
        lacks part of its model (an equation left as ``???``, a call of a macro
        it does not define, a module).

    Notes
    -----
    The file is untrusted: PySD's translators would hand lookup ranges and
    literal lists to Python's ``eval``, so they run with :func:`_literal` in its
    place, and an XMILE file is read by a parser that expands no entity.
    """
    if not isinstance(path, (str, Path)) or not str(path).strip():
        raise ModelReadError(f"path must name a .mdl or .xmile file, got {path!r}")
    path = Path(path)
    if not path.exists():
        raise ModelReadError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelReadError(f"not a model file: {path}")
    kind = _MODEL_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ModelReadError(
            f"{path}: unknown model format '{path.suffix}' (expected .mdl, .xmile, .xml or .stmx)")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as err:
        raise ModelReadError(f"{path}: cannot read the file: {err}") from err
    if not text.strip():
        raise ModelReadError(f"{path}: the file is empty")
    if kind == "vensim":  # before PySD expands anything
        _check_ranges(path, text)
        _check_macros(path, text)
        _check_literals(path, ((eq.split("=", 1)[0], eq) for eq in _equations(text)))
    else:
        _check_xmile_dimensions(path, text)
        _check_literals(path, re.findall(r"<(?:\w+:)?(?:aux|stock|flow)\b[^>]*?\bname\s*=\s*[\"']([^\"']*)"
                                         r".*?<(?:\w+:)?eqn>(.*?)</(?:\w+:)?eqn>", text, re.S))
    root = None  # the XMILE file's parsed tree
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with _literal_eval_only():
                if kind == "vensim":
                    from pysd.translators.vensim.vensim_file import VensimFile

                    parsed = VensimFile(path)
                    parsed.parse()
                else:
                    root = _flatten_modules(path, _check_xmile(path, text))
                    _points_over_scale(root)
                    _refuse_what_the_xmile_file_lacks(path, root)
                    parsed = _xmile_file(path, root)
                    parsed.parse()
                abstract = parsed.get_abstract_model()
        _check_variable_sizes(path, abstract)
        return abstract
    except (UnsupportedFeature, ModelReadError, ResourceLimit):
        raise
    except Exception as err:  # PySD raises many kinds; all mean "cannot read"
        if root is not None:
            _refuse_undefined_calls(path, root)
        unsafe = _find_cause(err, _NotALiteral)
        if unsafe is not None:
            where = _pysd_element_name(err)
            raise ModelReadError(
                f"{path}: {f'{where!r}' if where else 'an equation'} has {unsafe.text!r} where only "
                f"numbers are allowed (a lookup range or a literal list); refused, not "
                f"evaluated") from None
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelReadError(f"{path}: not a model PySD can read ({type(err).__name__}: {first})") from err


# --------------------------------------------------------------------------
# Sizes estimated from the text, before PySD expands a range or we a macro
# --------------------------------------------------------------------------

# a numbered range of Vensim, (d1-d100): the same prefix, then two whole numbers
_RANGE = re.compile(r"\(\s*([A-Za-z_][\w ]*?)\s*(\d+)\s*-\s*([A-Za-z_][\w ]*?)\s*(\d+)\s*\)")


def _equations(text: str):
    """The equation part (before the first ``~``) of each of a Vensim file's ``|``-ended entries,
    without its ``{comments}``; the sketch is not read."""
    text = text.split("\\\\\\---///", 1)[0]
    for entry in re.sub(r"\{[^{}]*\}", " ", text).split("|"):
        yield entry.split("~", 1)[0]


def _check_ranges(path: Path, text: str):
    """Refuse a subscript definition whose numbered ranges (``(d1-d100000)``) hold too many elements."""
    for equation in _equations(text):
        total, first = 0, None
        for match in _RANGE.finditer(equation):
            prefix, a, other, b = match.groups()
            if prefix.strip().lower() != other.strip().lower():
                continue
            total += abs(int(b) - int(a)) + 1
            first = first or match.group(0)
        if total > _limits.MAX_ELEMENTS:
            name = equation.split(":", 1)[0].strip()[:40]
            raise ResourceLimit(f"{path}: subscript range '{name}' {first} has {total:,} elements; aicircle takes "
                                f"at most {_limits.MAX_ELEMENTS:,} per dimension or variable")


_NUMBER = re.compile(r"(?<![\w.])(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _check_literals(path: Path, equations):
    """Refuse a number beyond what a float holds (a 400-digit literal, ``1e400``): read as
    infinity or an overflow, never as the number written. ``equations``: (name, text) pairs."""
    for name, equation in equations:
        for match in _NUMBER.finditer(equation):
            if math.isinf(float(match.group(0))):
                number = match.group(0) if len(match.group(0)) <= 20 else \
                    f"{match.group(0)[:12]}... ({len(match.group(0))} characters)"
                name = " ".join(name.split())[:40] or "an equation"
                raise ModelReadError(f"{path}: the number {number} in '{name}' is beyond what a float holds "
                                     f"(about 1.8e308)")


def _check_xmile_dimensions(path: Path, text: str):
    """Refuse an XMILE ``<dim size="N">`` above the element limit."""
    for match in re.finditer(r"<(?:\w+:)?dim\b([^>]*)>", text):
        size = re.search(r"\bsize\s*=\s*[\"']\s*(\d+)", match.group(1))
        if size and int(size.group(1)) > _limits.MAX_ELEMENTS:
            name = re.search(r"\bname\s*=\s*[\"']([^\"']*)", match.group(1))
            raise ResourceLimit(f"{path}: dimension '{name.group(1) if name else '?'}' has "
                                f"{int(size.group(1)):,} elements; aicircle takes at most "
                                f"{_limits.MAX_ELEMENTS:,} per dimension or variable")


def _check_variable_sizes(path: Path, abstract):
    """Refuse a variable whose dimensions multiply to more than the element limit (``x[D, D]``)."""
    sizes = {_name_key(r.name): len(r.subscripts) if isinstance(r.subscripts, list) else 1
             for r in abstract.sections[0].subscripts}
    for section in abstract.sections:
        for element in section.elements:
            for component in element.components:
                subscripts = component.subscripts[0] if component.subscripts else []
                n = math.prod(sizes.get(_name_key(str(d)), 1) for d in subscripts)
                if n > _limits.MAX_ELEMENTS:
                    raise ResourceLimit(f"{path}: '{element.name}' [{', '.join(map(str, subscripts))}] has "
                                        f"{n:,} elements; aicircle takes at most {_limits.MAX_ELEMENTS:,} per "
                                        f"variable")


def _check_macros(path: Path, text: str):
    """Refuse a recursive macro, or macros that would expand into too many calls, before any is expanded.

    Each macro's calls of the others are counted in its equations; a call of M
    expands into ``1 + the expansions of the calls in M``, so nested macros each
    calling the previous twice double at each level.
    """
    blocks = re.findall(r":MACRO:\s*([^(\n]+?)\s*\((.*?):END OF MACRO:", text, re.S | re.I)
    if not blocks:
        return
    names = [name.strip() for name, _ in blocks]
    keys = [_name_key(n) for n in names]
    pattern = {key: re.compile(r"(?<![\w\"])" + r"[\s_]+".join(map(re.escape, name.split())) + r"\s*\(",
                               re.I) for key, name in zip(keys, names)}

    def calls(text_part):
        equations = list(_equations(text_part))
        return {key: sum(len(pattern[key].findall(eq)) for eq in equations) for key in keys}

    body_calls = {key: calls(body.split(")", 1)[-1]) for key, (_, body) in zip(keys, blocks)}
    main = re.sub(r":MACRO:.*?:END OF MACRO:", " ", text, flags=re.S | re.I)
    main_calls = calls(main)
    expansions: dict = {}

    def expand(key, chain):
        if key in chain:
            loop = " -> ".join(names[keys.index(k)] for k in chain[chain.index(key):] + [key])
            raise ModelReadError(f"{path}: macro {names[keys.index(key)]} calls itself ({loop}), "
                                 f"so it would expand forever")
        if key not in expansions:
            expansions[key] = 1 + sum(n * expand(callee, chain + [key])
                                      for callee, n in body_calls[key].items() if n)
        return expansions[key]

    total = sum(n * expand(key, []) for key, n in main_calls.items() if n)
    if total > _limits.MAX_MACRO_CALLS:
        raise ResourceLimit(f"{path}: the macros' calls would expand into {total:,} copies of their "
                            f"equations; aicircle takes at most {_limits.MAX_MACRO_CALLS:,}")


# --------------------------------------------------------------------------
# No model text reaches eval: a literal-only stand-in for PySD's eval calls
# --------------------------------------------------------------------------


class _NotALiteral(Exception):
    """Model text that PySD would have evaluated is not a plain literal."""

    def __init__(self, text):
        text = " ".join(str(text).split())
        self.text = text if len(text) <= 80 else text[:77] + "..."
        super().__init__(f"not a literal: {self.text}")


_TOKEN = re.compile(r"""\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"""
                    r"""|(?P<str>'[^'\\\n]*')|(?P<punct>[-+()\[\],]))""")
_MAX_LITERAL_DEPTH = 16


def _literal(text, *_ignored):
    """The value of a literal as Python's ``eval`` would give it, or ``_NotALiteral``.

    Accepts what PySD's grammars let through to ``eval``: numbers with optional
    signs, strings in single quotes (no escapes), and tuples/lists of these,
    nested. Anything else (a name, a call, an operator) is refused unread.
    """
    if not isinstance(text, str) or len(text) > 1_000_000:
        raise _NotALiteral(text)
    tokens = []
    pos = 0
    stripped = text.rstrip()
    while pos < len(stripped):
        m = _TOKEN.match(stripped, pos)
        if m is None or m.end() == pos:
            raise _NotALiteral(text)
        tokens.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    tokens.append(("end", ""))
    i = 0

    def value(depth):
        # PySD's constant arrays let "10 - 2 - 3" through: a sum of signed numbers
        nonlocal i
        total = atom(depth)
        while tokens[i] in (("punct", "+"), ("punct", "-")):
            minus = tokens[i][1] == "-"
            i += 1
            term = atom(depth)
            if not all(isinstance(v, (int, float)) for v in (total, term)):
                raise _NotALiteral(text)
            total = total - term if minus else total + term
        return total

    def atom(depth):
        nonlocal i
        if depth > _MAX_LITERAL_DEPTH:
            raise _NotALiteral(text)
        kind, tok = tokens[i]
        if kind == "punct" and tok in "+-":
            i += 1
            if not (tokens[i][0] == "num" or tokens[i] in (("punct", "+"), ("punct", "-"))):
                raise _NotALiteral(text)
            return -atom(depth + 1) if tok == "-" else atom(depth + 1)
        if kind == "num":
            i += 1
            try:
                return int(tok) if tok.isdigit() else float(tok)
            except ValueError:  # more digits than int() reads
                raise _NotALiteral(text) from None
        if kind == "str":
            i += 1
            return tok[1:-1]
        if kind == "punct" and tok in "([":
            close = ")" if tok == "(" else "]"
            i += 1
            items, comma = sequence(depth + 1, close)
            if tokens[i] != ("punct", close):
                raise _NotALiteral(text)
            i += 1
            if close == "]":
                return items
            return items[0] if len(items) == 1 and not comma else tuple(items)
        raise _NotALiteral(text)

    def sequence(depth, close):
        """Comma-separated values up to ``close`` (or the end); whether a comma was seen."""
        nonlocal i
        items, comma = [], False
        while tokens[i] != ("punct", close) and tokens[i][0] != "end":
            items.append(value(depth))
            if tokens[i] == ("punct", ","):
                comma = True
                i += 1
            elif tokens[i] != ("punct", close) and tokens[i][0] != "end":
                raise _NotALiteral(text)
        return items, comma

    items, comma = sequence(0, None)
    if tokens[i][0] != "end" or not items:
        raise _NotALiteral(text)
    return items[0] if len(items) == 1 and not comma else tuple(items)


_PARSE_LOCK = threading.RLock()


@contextlib.contextmanager
def _literal_eval_only():
    """Give PySD's translator modules :func:`_literal` as their ``eval`` while parsing."""
    from pysd.translators.vensim import vensim_element
    from pysd.translators.xmile import xmile_element

    modules = (vensim_element, xmile_element)
    with _PARSE_LOCK:
        saved = [m.__dict__.get("eval") for m in modules]
        for m in modules:
            m.eval = _literal
        try:
            yield
        finally:
            for m, old in zip(modules, saved):
                if old is None:
                    del m.eval
                else:
                    m.eval = old


def _find_cause(err, cls):
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, cls):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _pysd_element_name(err):
    """The name of the innermost PySD element or component being parsed when ``err`` arose."""
    name = None
    tb = err.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if type(owner).__module__.startswith("pysd.translators") and \
                isinstance(getattr(owner, "name", None), str):
            name = owner.name
        tb = tb.tb_next
    return name


_XMILE_VARIABLES = ("stock", "flow", "aux")


def _check_xmile(path: Path, text: str):
    """Refuse an XMILE file that is unsafe, or whose broken XML would make PySD drop part of it.

    Entities are never expanded: a DTD that declares any (billion laughs, an
    external ``SYSTEM`` entity reading a local file) or names an external DTD is
    refused before any XML parser sees the file.

    PySD parses XMILE with lxml's ``recover=True``. That rightly forgives what
    Stella writes (undefined ``isee:`` prefixes, a stray end tag) but also
    silently drops variables when a tag is left open (the next ones nest inside
    it), or reads a truncated file. So: the ``<variables>`` element must be
    closed, and every stock, flow and aux it opens must be read as one of its
    children.

    Returns the parsed root element, which PySD then reads (the file is not read twice).
    """
    from lxml import etree

    if re.search(r"<!ENTITY\b", text, re.I) or \
            re.search(r"<!DOCTYPE[^>\[]*\b(?:SYSTEM|PUBLIC)\b", text, re.I):
        raise ModelReadError(f"{path}: the file declares XML entities or an external DTD, which a "
                             f"model file may not do (refused, nothing expanded or fetched)")
    parser = _safe_xml_parser()
    try:
        tree = etree.fromstring(text.encode("utf-8"), parser)
    except etree.XMLSyntaxError as err:
        raise ModelReadError(f"{path}: malformed XML: {err}") from None
    fatal = [e for e in parser.error_log if e.level_name == "FATAL"]
    first = f" ({fatal[0].message.strip()}, line {fatal[0].line})" if fatal else ""
    # what a comment, a CDATA section or a processing instruction holds is no tag: a
    # "</variables>" inside one must not end the block counted below
    markup = re.sub(r"<!--.*?(?:-->|\Z)|<!\[CDATA\[.*?(?:\]\]>|\Z)|<\?.*?(?:\?>|\Z)", " ", text, flags=re.S)
    blocks = re.findall(r"<(?:\w+:)?variables[\s>].*?</(?:\w+:)?variables\s*>", markup, re.S)
    if tree is None or not blocks:
        raise ModelReadError(f"{path}: malformed XML: no complete <variables> element "
                             f"(truncated?){first}")
    opened = sum(len(re.findall(rf"<(?:\w+:)?(?:{'|'.join(_XMILE_VARIABLES)})[\s>/]", block))
                 for block in blocks)
    read = sum(1 for el in tree.iter() if _local(el.tag) in _XMILE_VARIABLES
               and el.getparent() is not None and _local(el.getparent().tag) == "variables")
    if read < opened:
        raise ModelReadError(f"{path}: malformed XML: {opened - read} of {opened} variables cannot be "
                             f"read{first}")
    return tree


def _xmile_variables(root):
    """``(name, element)`` of every stock, flow, aux and module of every ``<model>`` in ``root``."""
    for el in root.iter():
        parent = el.getparent()
        if _local(el.tag) in (*_XMILE_VARIABLES, "module") and parent is not None \
                and _local(parent.tag) == "variables":
            yield el.get("name", ""), el


def _equation(el) -> str:
    eqn = next((child for child in el if _local(child.tag) == "eqn"), None)
    return "" if eqn is None or eqn.text is None else eqn.text.strip()


def _refuse_what_the_xmile_file_lacks(path: Path, root):
    """Refuse, by name, an XMILE file whose model is not all in it.

    An equation ``???`` is what Vensim writes where XMILE cannot express its equation (an
    array defined element by element, a subrange): the file has lost it.
    """
    for name, el in _xmile_variables(root):
        if _equation(el) == "???":
            raise ModelReadError(f"{path}: equation left as '???' in '{name}': the tool that wrote the "
                                 f"file could not express it in XMILE, so the model is incomplete")


def _name_key(name: str) -> str:
    """An XMILE name's identity: quotes dropped, case, and runs of spaces, ``_`` and ``\\n`` as one."""
    return re.sub(r"(?:[\s_]|\\n)+", "_", name.strip().strip('"').strip().lower())


def _plain_name(name: str) -> str:
    """An XMILE name as written, with the ``\\n`` Stella writes for a line break read as a space."""
    return re.sub(r"\s*\\n\s*", " ", name.strip())


_NAME_TOKEN = re.compile(r'"[^"]*"|[A-Za-z_]\w*')


def _flatten_modules(path: Path, root):
    """``root`` with its ``<module>`` elements expanded into one model, or ``root`` if it has none.

    XMILE's modules (one level, as Stella writes them) run a ``<model name="M">`` of the
    file inside the main model: each variable V of M becomes the main model's ``M.V`` (the
    name Stella gives its column), references inside M are renamed alike, and each
    ``<connect to="V" from="SOURCE">`` replaces M's placeholder V with an aux equal to
    SOURCE (``.X``: the main model's X; ``N.X``: the variable X of module N). PySD's reader
    ignores modules, so what it reads is the flattened model. Anything else (a module of a
    module, a connection from further away, a module without its model) is refused by name.
    """
    from lxml import etree

    models = [el for el in root if _local(el.tag) == "model"]
    main = next((m for m in models if m.get("name") is None), None)
    if main is None or not any(_local(el.tag) == "module" for _, el in _xmile_variables(root)):
        return root

    def variables_of(model):
        block = next((el for el in model if _local(el.tag) == "variables"), None)
        return [] if block is None else [el for el in block if _local(el.tag) in (*_XMILE_VARIABLES,
                                                                                   "module", "gf")]

    def refuse(name, what):
        return ModelReadError(f"{path}: XMILE module in '{name}' cannot be read: {what}")

    submodels = {m.get("name"): m for m in models if m.get("name") is not None}
    modules = [el for el in variables_of(main) if _local(el.tag) == "module"]
    module_names = {_name_key(el.get("name", "")) for el in modules}
    flat = []
    for el in variables_of(main):
        if _local(el.tag) != "module":
            el = copy.deepcopy(el)
            el.set("name", _plain_name(el.get("name", "")))
            flat.append(el)
    for module in modules:
        prefix = _plain_name(module.get("name", ""))
        model = submodels.get(module.get("name"))
        if model is None:
            raise refuse(prefix, "the file has no <model> of that name")
        own = {_name_key(el.get("name", "")): _plain_name(el.get("name", "")) for el in variables_of(model)}
        if any(_local(el.tag) == "module" for el in variables_of(model)):
            raise refuse(prefix, "it holds modules of its own")
        sources = {}
        for connect in (el for el in module if _local(el.tag) == "connect"):
            source = connect.get("from", "")
            owner, _, name = source.rpartition(".")
            if (owner and _name_key(owner) not in module_names) or "." in owner:
                raise refuse(prefix, f"its input comes from {source!r}, not the main model or a module of it")
            sources[_name_key(connect.get("to", ""))] = f"{_plain_name(owner)}.{name}" if owner else name

        def renamed(text, prefix=prefix, own=own):
            return _NAME_TOKEN.sub(lambda m: f'"{prefix}.{own[_name_key(m.group(0))]}"'
                                   if _name_key(m.group(0)) in own else m.group(0), text)

        for el in variables_of(model):
            name = f"{prefix}.{_plain_name(el.get('name', ''))}"
            source = sources.get(_name_key(el.get("name", "")))
            if source is not None:  # the placeholder of an input: an aux equal to its source
                namespace = el.tag[:el.tag.index("}") + 1] if el.tag.startswith("{") else ""
                el = etree.Element(f"{namespace}aux")
                etree.SubElement(el, f"{namespace}eqn").text = f'"{_plain_name(source)}"'
            else:
                el = copy.deepcopy(el)
                for child in el:
                    if _local(child.tag) in ("eqn", "inflow", "outflow") and child.text:
                        child.text = renamed(child.text)
            el.set("name", name)
            flat.append(el)
    flattened = copy.deepcopy(root)
    for model in [el for el in flattened if _local(el.tag) == "model"]:
        if model.get("name") is not None:
            flattened.remove(model)
        else:
            block = next(el for el in model if _local(el.tag) == "variables")
            for el in list(block):
                block.remove(el)
            block.extend(flat)
    return flattened


def _points_over_scale(root):
    """Drop the ``<xscale>`` of every graphical function that lists its ``<xpts>``.

    In XMILE the x points, when given, are the function's; ``xscale`` is only their range
    (Stella writes ``min="0" max="0"`` beside uneven points). PySD's reader spreads the y
    values evenly over ``xscale`` whenever it is present, so without this it would read
    another function.
    """
    for gf in [el for el in root.iter() if _local(el.tag) == "gf"]:
        children = {_local(child.tag): child for child in gf}
        if "xpts" in children and "xscale" in children:
            gf.remove(children["xscale"])


# A call of a function whose name holds a space: never an XMILE builtin or a macro
# (both are identifiers), but what a Vensim macro's name becomes when the exporter
# drops the macro's definition. IF THEN ELSE and the logical operators are words too.
_SPACED_CALL = re.compile(r"\b([A-Za-z]\w*(?: +[A-Za-z]\w*)+) *\(")
_KEYWORDS = {"if", "then", "else", "and", "or", "not"}


def _refuse_undefined_calls(path: Path, root):
    """If PySD cannot parse an equation because it calls a function the file does not define, say which."""
    for name, el in _xmile_variables(root):
        for call in _SPACED_CALL.finditer(_equation(el)):
            if not _KEYWORDS & {word.lower() for word in call.group(1).split()}:
                raise ModelReadError(f"{path}: call of '{call.group(1)}', a function the file does not "
                                     f"define (a macro it lost), in '{name}'") from None


def _local(tag) -> str:
    """An XML tag without its namespace or undefined prefix (recovered tags may keep ``isee:``)."""
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1] if isinstance(tag, str) else ""


def _safe_xml_parser():
    """lxml's parser as PySD configures it (``recover=True``), minus every way to reach outside."""
    from lxml import etree

    return etree.XMLParser(recover=True, encoding="utf-8", resolve_entities=False,
                           no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False)


def _xmile_file(path: Path, root):
    """PySD's XmileFile reading the root element :func:`_check_xmile` already parsed safely."""
    from pysd.translators.xmile.xmile_file import XmileFile

    class _CheckedXmileFile(XmileFile):
        def _get_root(self):
            return root

    return _CheckedXmileFile(path)


def fold_arithmetic(operators, values) -> float:
    """The value of a PySD ``ArithmeticStructure`` whose operands are the numbers ``values``.

    ``operators`` are its operators as strings: one unary ``negative`` or
    ``positive`` for a single operand, otherwise ``+ - * /`` applied left to right,
    or only ``^`` (right-associative), as Vensim reads them. An operator outside
    these, or a division by zero, raises ``ValueError`` naming it.
    """
    ops = [str(o) for o in operators]
    if len(values) == 1:
        return -values[0] if ops and ops[0] == "negative" else values[0]
    if all(op == "^" for op in ops):
        out = values[-1]
        for v in reversed(values[:-1]):
            out = v ** out
        return out
    out = values[0]
    for op, v in zip(ops, values[1:]):
        if op == "+":
            out += v
        elif op == "-":
            out -= v
        elif op == "*":
            out *= v
        elif op == "/":
            if v == 0:
                raise ValueError("division by zero")
            out /= v
        else:
            raise ValueError(f"operator '{op}'")
    return out
