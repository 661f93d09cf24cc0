"""YAML → pydantic model loading that reports every problem as FILE:LINE:COL: key.path: message."""

from __future__ import annotations

import difflib
import enum
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]


class _NoValue(enum.Enum):
    """Marks a LocatedError that has no offending value to show (missing key, hidden secret)."""

    NO_VALUE = "no value"


NO_VALUE = _NoValue.NO_VALUE


class Issue(TypedDict, total=False):
    """One problem a validator reports through `issues_error`; `loc` is relative to the validated node."""

    loc: Loc
    msg: str
    input: Any
    expected: Sequence[str]
    redact: bool


@dataclass(frozen=True, slots=True)
class LocatedError:
    """One configuration problem with the place in the file where it is."""

    file: str
    line: int | None
    column: int | None
    key_path: str
    message: str
    bad_value: Any = NO_VALUE
    valid_choices: tuple[str, ...] = field(default=())

    def format(self) -> str:
        """Render as `FILE:LINE:COL: key.path: message (got 'x'; valid choices: a, b)`."""
        where = self.file
        if self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        text = f"{where}: " + (f"{self.key_path}: " if self.key_path else "") + self.message
        extra: list[str] = []
        if self.bad_value is not NO_VALUE:
            extra.append(f"got {_short_repr(self.bad_value)}")
        if self.valid_choices:
            extra.append("valid choices: " + ", ".join(self.valid_choices))
        return text + (f" ({'; '.join(extra)})" if extra else "")


class ConfigError(ValueError):
    """A configuration file could not be loaded; `errors` holds every problem found."""

    def __init__(self, errors: Sequence[LocatedError]) -> None:
        self.errors = list(errors)
        super().__init__(self.format())

    def format(self) -> str:
        """Every error on its own line, in file order."""
        return "\n".join(e.format() for e in self.errors)


def issues_error(issues: Sequence[Issue], summary: str | None = None) -> PydanticCustomError:
    """Build a pydantic error that `load_yaml_model` expands into one located error per issue.

    Cross-field validators can only raise once; this lets them report every problem, each on its
    own line of the file. Outside `load_yaml_model` the summary is still a readable message.
    """
    if summary is None:
        summary = "; ".join(
            (".".join(str(p) for p in i.get("loc", ())) + ": " if i.get("loc") else "") + i.get("msg", "")
            for i in issues
        )
    return PydanticCustomError("config_issues", "{summary}", {"summary": summary, "issues": list(issues)})


def read_yaml(path: Path) -> Any:
    """Parse a YAML file into plain dicts/lists/scalars; raise ConfigError with the line on failure."""
    return _plain(_parse(Path(path)))


def located(path: Path, loc: Sequence[str | int], message: str) -> LocatedError:
    """A problem found after validation (e.g. an unset secret), placed at `loc` in the file `path`."""
    line, col, key_path = _position(_parse(Path(path)), tuple(loc))
    return LocatedError(str(path), line, col, key_path, message)


def load_yaml_model(path: Path, model_type: type[M], *, context: Mapping[str, Any] | None = None) -> M:
    """Load `path` and validate it as `model_type`; raise ConfigError listing every problem."""
    path = Path(path)
    tree = _parse(path)
    if tree is None:
        raise ConfigError([LocatedError(str(path), 1, 1, "", "file is empty; expected a YAML mapping")])
    try:
        return model_type.model_validate(_plain(tree), context=dict(context or {}))
    except ValidationError as exc:
        raise ConfigError(locate_validation_error(exc, tree, str(path), model_type)) from None


def locate_validation_error(
    exc: ValidationError, tree: Any, file: str, model_type: type[BaseModel] | None = None
) -> list[LocatedError]:
    """Turn a pydantic ValidationError into LocatedErrors using the line marks of `tree`."""
    out: list[LocatedError] = []
    for err in exc.errors():
        loc: Loc = tuple(err["loc"])
        ctx: dict[str, Any] = dict(err.get("ctx") or {})
        issues = ctx.get("issues")
        if err["type"] == "config_issues" and isinstance(issues, list):
            for issue in issues:
                sub = loc + tuple(issue.get("loc", ()))
                out.append(_located_issue(file, tree, sub, issue))
            continue
        out.append(_located_pydantic(file, tree, loc, err, ctx, model_type))
    # One problem reported twice (e.g. by a field and a model validator) is noise.
    unique = list(dict.fromkeys(out))
    unique.sort(key=lambda e: (e.line or 0, e.column or 0))
    return unique


def _located_issue(file: str, tree: Any, loc: Loc, issue: Issue) -> LocatedError:
    line, col, path = _position(tree, loc)
    value = issue.get("input", NO_VALUE)
    if issue.get("redact"):
        value = NO_VALUE
    elif value is not NO_VALUE and not _is_scalar(value):
        value = _TypeName(value)
    choices = tuple(str(c) for c in issue.get("expected", ()))
    return LocatedError(
        file, line, col, path, _with_hint(issue.get("msg", "invalid"), value, choices), value, choices
    )


def _located_pydantic(
    file: str, tree: Any, loc: Loc, err: Any, ctx: dict[str, Any], model_type: type[BaseModel] | None
) -> LocatedError:
    kind = err["type"]
    # An unknown key is pointed at by its name; any other error by the offending value.
    line, col, path = _position(tree, loc, at_key=kind == "extra_forbidden")
    message = str(err["msg"])
    value: Any = err.get("input", NO_VALUE)
    choices: tuple[str, ...] = ()
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model_type, loc[:-1]) if model_type else ()
        key = str(loc[-1]) if loc else ""
        message = "unknown key"
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean '{close[0]}'?"
        # The value under an unknown key may be a secret typed in the wrong place: never echo it.
        return LocatedError(file, line, col, path, message, NO_VALUE, tuple(allowed))
    if kind == "missing":
        return LocatedError(file, line, col, path, "required key is missing", NO_VALUE)
    if "expected" in ctx:
        choices = _choices(ctx["expected"])
        if kind in ("literal_error", "enum"):
            message = "not a valid choice"
    if ctx.get("redact") or not _is_scalar(value):
        value = NO_VALUE if ctx.get("redact") or value is NO_VALUE else _TypeName(value)
    return LocatedError(file, line, col, path, _with_hint(message, value, choices), value, choices)


class _TypeName:
    """Stands in for a non-scalar bad value: the error says 'got a mapping', not the whole thing."""

    def __init__(self, value: Any) -> None:
        self.name = (
            "a mapping"
            if isinstance(value, Mapping)
            else "a list"
            if isinstance(value, list)
            else (type(value).__name__)
        )

    def __repr__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _TypeName) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


def _with_hint(message: str, value: Any, choices: tuple[str, ...]) -> str:
    if isinstance(value, str) and choices and value not in choices and "did you mean" not in message:
        close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
        if close:
            return f"{message}; did you mean '{close[0]}'?"
    return message


def _choices(expected: Any) -> tuple[str, ...]:
    if isinstance(expected, str):
        # pydantic renders Literal/Enum choices as "'a', 'b' or 'c'" (or "1 or 2" for numbers).
        quoted = re.findall(r"'((?:[^'\\]|\\.)*)'", expected)
        if quoted:
            return tuple(quoted)
        return tuple(p for p in re.split(r",\s*|\s+or\s+", expected) if p)
    if isinstance(expected, Iterable):
        return tuple(str(x) for x in expected)
    return (str(expected),)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- positions ---------------------------------------------------------------------------------


def _position(tree: Any, loc: Loc, *, at_key: bool = False) -> tuple[int | None, int | None, str]:
    """Line and column (1-based) of the node at `loc`, and its key path like `devices[3].snmp`.

    Loc elements that name no node (pydantic union tags, `[key]`) are skipped; the last element is
    kept in the path even when absent, because a missing key is named by it.
    """
    node = tree
    line, col = _own_position(tree)
    parts: list[str | int] = []
    for i, elem in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, CommentedMap) and isinstance(elem, str) and elem in node:
            kline, kcol = node.lc.key(elem)
            child = node[elem]
            if last and not at_key and not isinstance(child, CommentedMap | CommentedSeq):
                line, col = node.lc.value(elem)  # point at the bad value itself
            else:
                line, col = kline, kcol
            node = child
            parts.append(elem)
        elif isinstance(node, CommentedSeq) and isinstance(elem, int) and 0 <= elem < len(node):
            line, col = node.lc.item(elem)
            node = node[elem]
            parts.append(elem)
        elif last and isinstance(elem, str | int) and not str(elem).startswith("["):
            parts.append(elem)
    return (line + 1 if line is not None else None), (col + 1 if col is not None else None), _join(parts)


def _own_position(tree: Any) -> tuple[int | None, int | None]:
    if isinstance(tree, CommentedMap | CommentedSeq) and tree.lc.line is not None:
        return tree.lc.line, tree.lc.col
    return 0, 0


def _join(parts: Sequence[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


# --- model introspection (for the allowed keys of an unknown-key error) -------------------------


def _allowed_keys(model_type: type[BaseModel] | None, loc: Loc) -> tuple[str, ...]:
    model = _model_at(model_type, loc)
    if model is None:
        return ()
    return tuple(f.alias or name for name, f in model.model_fields.items())


def _model_at(model_type: Any, loc: Loc) -> type[BaseModel] | None:
    current: Any = model_type
    for elem in loc:
        candidates = _models_in(current)
        nxt: Any = None
        for cand in candidates:
            if isinstance(elem, str) and cand.__name__ == elem:
                nxt = cand  # a union tag naming the member model
                break
            if isinstance(elem, str):
                for name, f in cand.model_fields.items():
                    if elem in (name, f.alias):
                        nxt = f.annotation
                        break
            if nxt is not None:
                break
        if nxt is None:
            # An int index (list item) or a dict key: stay on the item type.
            nxt = _item_type(current)
        if nxt is None:
            return None
        current = nxt
    models = _models_in(current)
    return models[0] if len(models) == 1 else None


def _models_in(tp: Any) -> list[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(tp) for m in _models_in(a)]
    return []


def _item_type(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated or origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            found = _item_type(arg)
            if found is not None:
                return found
        return None
    args = typing.get_args(tp)
    if origin in (list, tuple, set, frozenset, Sequence) and args:
        return args[0]
    if origin in (dict, Mapping) and len(args) == 2:
        return args[1]
    return tp if _models_in(tp) else None


# --- parsing -------------------------------------------------------------------------------------


def _parse(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([LocatedError(str(path), None, None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([LocatedError(str(path), None, None, "", f"cannot read file: {exc}")]) from None
    yaml = YAML(typ="rt")  # round-trip mode keeps line/column marks on every mapping and sequence
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        raise ConfigError([_syntax_error(str(path), exc, text)]) from None
    except YAMLError as exc:
        raise ConfigError([LocatedError(str(path), None, None, "", f"YAML error: {exc}")]) from None


def _syntax_error(file: str, exc: MarkedYAMLError, text: str) -> LocatedError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    col = mark.column + 1 if mark is not None else None
    problem = str(exc.problem or exc.context or "invalid YAML")
    dup = re.match(r'found duplicate key "(.*?)"', problem)
    if dup:
        # ruamel's text quotes both values; they may be secrets, so name only the key.
        return LocatedError(file, line, col, _duplicate_path(text, dup.group(1), line or 0), "duplicate key")
    message = f"YAML syntax error: {problem}"
    if exc.context and exc.problem:
        message += f" ({exc.context})"
    return LocatedError(file, line, col, "", message)


def _duplicate_path(text: str, key: str, line: int) -> str:
    """Key path of a duplicated key: the closest mapping above `line` (1-based) that holds `key`."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = True
    try:
        tree = yaml.load(text)
    except YAMLError:
        return key
    best: tuple[int, str] = (-1, key)

    def walk(node: Any, parts: list[str | int]) -> None:
        nonlocal best
        if isinstance(node, CommentedMap):
            start = node.lc.line if node.lc.line is not None else 0
            if key in node and best[0] < start < line:
                best = (start, _join([*parts, key]))
            for k, v in node.items():
                walk(v, [*parts, k])
        elif isinstance(node, CommentedSeq):
            for i, v in enumerate(node):
                walk(v, [*parts, i])

    walk(tree, [])
    return best[1]


def _plain(node: Any) -> Any:
    """ruamel round-trip nodes → plain Python values, so validators see ordinary types."""
    if isinstance(node, Mapping):
        return {_plain(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool | ScalarBoolean):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node
