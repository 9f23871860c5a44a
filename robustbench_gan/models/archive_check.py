"""Checks that a model archive can be loaded without running anything it carries.

``torch.export.load`` (``*.pt2``) warns that it must never see an untrusted file, and with
reason: it unpickles example inputs and pickled weights with ``weights_only=False`` (or
after a failed ``weights_only=True``), opaque constants with ``pickle.loads``, parses the
graph's symbolic sizes with ``sympy.sympify`` (``eval``), ``ExportedProgram.module()``
``exec``s the archive's ``guards_code``, and FX writes the graph's names into the Python
source it compiles. ``check_export`` accepts an archive only when every pickle in it loads
with ``weights_only=True``, every size expression is a plain sympy expression, every name
is a plain name, every call is a torch operator that touches no file, and it holds no
compiled code (AOTInductor); the caller then loads the same bytes and gets the module with
``check_guards=False``, so no guards code is compiled either.

``torch.jit.load`` runs a TorchScript archive's ``__setstate__`` methods as it loads, and
TorchScript can call ``torch.save`` and ``torch.from_file`` (create or overwrite files):
``check_torchscript`` refuses an archive whose code defines the one or mentions the others.
"""

from __future__ import annotations

import io
import json
import re
import tokenize
import zipfile
from collections.abc import Iterator
from typing import Any

import torch

from ..safe_load import UnreadableFile, load_tensors


class Refused(Exception):
    """The archive would run code (or touch files) when loaded: why, in one line."""


PLAIN = re.compile(r"[A-Za-z0-9_.+\-]*\Z")  # names, FQNs, op names, dtypes, versions
INERT_KEYS = frozenset({"metadata", "as_string", "as_strings", "guards_code"})
FILE_OPS = frozenset({"save", "from_file", "load_tensor"})  # aten::save, debugprims::...
TORCHSCRIPT_BANNED = re.compile(r"\b(__setstate__|save|from_file|load_tensor)\b")
HIGHER_ORDER_OPS = frozenset(
    {
        "associative_scan", "auto_functionalized", "auto_functionalized_v2", "cond",
        "flex_attention", "hints_wrapper", "invoke_quant", "invoke_quant_packed",
        "invoke_subgraph", "map_impl", "out_dtype", "run_const_graph", "scan",
        "tag_activation_checkpoint", "while_loop", "while_loop_stack_output",
        "with_effects", "wrap", "wrap_activation_checkpoint", "wrap_with_autocast",
        "wrap_with_set_grad_enabled",
    }
)  # fmt: skip
SYMPY_NAMES = frozenset(
    {
        "Symbol", "Integer", "Float", "Rational", "Add", "Mul", "Pow", "Max", "Min", "Abs",
        "Mod", "floor", "ceiling", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "StrictLessThan",
        "StrictGreaterThan", "LessThan", "GreaterThan", "Equality", "Unequality", "And",
        "Or", "Not", "Xor", "ITE", "Piecewise", "ExprCondPair", "Tuple", "oo", "zoo", "nan",
        "true", "false", "True", "False", "int_oo", "sqrt",
    }
)  # fmt: skip
SYMPY_OPS = frozenset("( ) , + - * / ** // % < > <= >= == != & | ~ [ ]".split())
FIXED_ENTRIES = frozenset(
    {"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"}
)


# -- the zip ------------------------------------------------------------------------
def entries(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The entries by name; two of the same name (which readers may resolve differently)
    are refused."""
    infos = archive.infolist()
    named = {info.filename: info for info in infos}
    if len(named) != len(infos):
        raise Refused("it has two entries of the same name")
    return named


def check_torchscript(archive: zipfile.ZipFile) -> None:
    """Refuse TorchScript whose code runs when loaded or reads or writes files."""
    for name, info in entries(archive).items():
        if not name.endswith(".py"):  # the code; the rest is data for its unpickler
            continue
        found = TORCHSCRIPT_BANNED.search(archive.read(info).decode("utf-8", "replace"))
        if found:
            what = (
                "defines __setstate__, which runs when it is loaded"
                if found[1] == "__setstate__"
                else f"uses {found[1]}, which reads or writes files"
            )
            raise Refused(f"its code {name.partition('/')[2]} {what}")


def check_export(archive: zipfile.ZipFile) -> None:
    """Refuse a torch.export archive that would run code or unpickle objects when loaded
    (see the module's docstring); the layout is torch's ``pt2`` archive, version 0."""
    named = entries(archive)
    top = next(iter(named), "").partition("/")[0]
    files = {}
    for name, info in named.items():
        root, _, rest = name.partition("/")
        if root != top or not rest and not name.endswith("/"):
            raise Refused(f"{name}: all entries must be in one top folder")
        if rest and not rest.endswith("/"):  # not a folder entry
            files[rest] = info
    pickled: set[str] = set()
    raw: set[str] = set()
    for rest in files:
        if rest in FIXED_ENTRIES or rest.startswith("extra/"):
            continue
        if rest.startswith("data/aotinductor/"):
            raise Refused(f"it holds AOTInductor code ({rest}), which would run when loaded")
        if rest.startswith("models/") and rest.endswith(".json"):
            model = rest.removeprefix("models/").removesuffix(".json")
            check_program(_json(archive, files[rest], rest))
            pickled.add(f"data/sample_inputs/{model}.pt")
            pickled.update({f"data/weights/{model}.pt", f"data/constants/{model}.pt"})
            for kind in ("weights", "constants"):
                config = f"data/{kind}/{model}_{kind}_config.json"
                if config in files:
                    raw.add(config)
                    _payloads(_json(archive, files[config], config), kind, pickled, raw)
        elif not rest.startswith(("data/weights/", "data/constants/", "data/sample_inputs/")):
            raise Refused(f"{rest}: not part of a torch.export program")
    for rest, info in files.items():
        if rest.startswith("data/") and (rest in pickled or rest not in raw):
            try:
                load_tensors(archive.read(info), path=rest)
            except UnreadableFile as exc:
                raise Refused(
                    f"{rest} is a pickle that needs more than tensors: {exc.reason}"
                ) from None


def _json(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> Any:
    try:
        return json.loads(archive.read(info))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(f"{name}: not JSON ({exc})") from None


def _payloads(config: Any, kind: str, pickled: set[str], raw: set[str]) -> None:
    """Sort a weights or constants config's files into those torch unpickles (``use_pickle``)
    and those it reads as raw tensor bytes; objects that are not tensors are refused."""
    entries_ = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries_, dict):
        raise Refused(f"its {kind} config has no config mapping")
    for fqn, meta in entries_.items():
        name = meta.get("path_name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not PLAIN.match(name) or not name:
            raise Refused(f"its {kind} entry {fqn!r} names no plain file")
        if kind == "constants" and not name.startswith("tensor_"):
            raise Refused(f"its constant {fqn!r} is a Python object ({name}), not a tensor")
        (pickled if meta.get("use_pickle") is not False else raw).add(f"data/{kind}/{name}")


# -- the program --------------------------------------------------------------------
def check_program(program: Any) -> None:
    """Every string of a ``models/*.json`` program that torch would evaluate or compile:
    plain names, torch operators, sympy expressions, pytree specs."""
    for key, text in _strings(program):
        if key == "expr_str":
            _check_expr(text)
        elif key in ("in_spec", "out_spec"):
            _check_spec(text)
        elif not PLAIN.match(text):
            raise Refused(f"its program has a {key or 'key'} that is not a plain name: {text!r}")
        if key in ("target", "as_operator"):
            _check_target(text)


def _strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(key, string) for every string and mapping key in ``value``, except the inert ones:
    metadata (kept, never evaluated), string constants (written into code with repr) and
    guards code (compiled only by ``module(check_guards=True)``)."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for inner, item in value.items():
            if inner in INERT_KEYS:
                continue
            yield "", str(inner)
            yield from _strings(item, str(inner))
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, key)


def _check_target(target: str) -> None:
    """A node's call: one of torch's symbolic int ops, or a torch operator found as torch's
    deserializer finds it (attributes only) that is an operator and touches no file."""
    from torch._export.serde.serialize import _SYM_OPS

    if target in {f"{op.__module__}.{op.__name__}" for op in _SYM_OPS} | {"_operator.getitem"}:
        return
    found: Any = torch.ops if target.startswith("torch.ops.") else None
    for part in target.split(".")[2:]:
        found = getattr(found, part, None) if part.isidentifier() else None
    if isinstance(found, torch._ops.OpOverload):
        if found._schema.name.partition("::")[2] not in FILE_OPS:
            return
    elif isinstance(found, torch._ops.HigherOrderOperator) and found.name() in HIGHER_ORDER_OPS:
        return
    raise Refused(f"its graph calls {target}, which is not a torch operator it may call")


def _check_expr(text: str) -> None:
    """A symbolic size as torch writes it (``srepr``: ``Mul(Integer(2), Symbol('s0',
    positive=True))``): sympy classes, numbers, quoted names, assumption keywords."""
    from sympy.core.assumptions import _assume_defined
    from torch.utils._sympy import functions

    allowed = SYMPY_NAMES | set(getattr(functions, "__all__", ()))
    keywords = set(_assume_defined) | {"precision"}
    try:
        tokens = [
            t
            for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER)
        ]
    except (tokenize.TokenError, SyntaxError):
        raise Refused(f"its program has a size that is not a sympy expression: {text!r}") from None
    for i, token in enumerate(tokens):
        after = tokens[i + 1].string if i + 1 < len(tokens) else ""
        ok = (
            token.type == tokenize.NUMBER
            or (token.type == tokenize.STRING and re.fullmatch(r"'[\w.+\-]*'", token.string))
            or (token.type == tokenize.OP and token.string in SYMPY_OPS)
            or (token.type == tokenize.NAME and token.string in allowed and after != "=")
            or (token.type == tokenize.NAME and token.string in keywords and after == "=")
            or (token.string == "=" and i > 0 and tokens[i - 1].string in keywords)
        )
        if not ok:
            raise Refused(f"its program has a size that is not a sympy expression: {text!r}")


def _check_spec(text: str) -> None:
    """A pytree spec (JSON in a string): its types plain names, its contexts (dict keys,
    JSON again) free of quotes, backslashes and control characters."""
    try:
        spec = json.loads(text)
    except ValueError:
        raise Refused(f"its program has a pytree spec that is not JSON: {text[:60]!r}") from None
    for key, value in _strings(spec):
        if key != "context" and not PLAIN.match(value):
            raise Refused(f"its pytree spec has a type that is not a plain name: {value!r}")
        if key == "context":
            try:
                context = json.loads(value)
            except ValueError:
                raise Refused(
                    f"its pytree spec has a context that is not JSON: {value!r}"
                ) from None
            for _, item in _strings(context):
                if re.search(r"['\"\\\x00-\x1f\x7f]", item):
                    raise Refused(f"its pytree spec has a key that is not plain: {item!r}")
