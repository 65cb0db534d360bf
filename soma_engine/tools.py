"""Tool calls and structured output on the surrogate path, framework-agnostic.

The integrations (LangChain, LlamaIndex) bind tools in OpenAI's function format
(``{"type": "function", "function": {"name", "description", "parameters"}}``), which is also
what ``tokenizer.apply_chat_template(messages, tools=...)`` takes. The surrogate answers in
text; this module reads the tool calls out of that text, checks them against the schemas
and the tool choice, and says no (:class:`ToolCallError`) when they do not hold up, so that
the teacher serves the turn instead (docs/design.md: no turn is lost, no silent wrong answer).

Formats read (the ones small open models emit):

* Hermes / Qwen / SmolLM3: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
* bare JSON: ``{"name": ..., "arguments"|"parameters"|"args": {...}}``, a list of those,
  OpenAI's ``{"type": "function", "function": {...}}`` or ``{"tool_calls": [...]}``,
  optionally in a ```json fence; with one forced tool, a bare object of its arguments
* Mistral ``[TOOL_CALLS] [...]``, Llama 3 ``<|python_tag|>{...}`` and
  ``<function=name>{...}</function>``

Teacher turns are recorded in the Hermes format (:func:`render_tool_calls`), so an adapter
trained on them learns to emit what :func:`parse_tool_calls` reads.

Also here: JSON-mode output checks (:func:`check_json_output`) and ``stop`` sequences for the
surrogate (:func:`truncate_at_stop`, :class:`StopFilter`).
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ParsedOutput",
    "StopFilter",
    "ToolCall",
    "ToolCallError",
    "ToolChoice",
    "check_json_output",
    "check_tool_output",
    "function_tools",
    "parse_json_text",
    "parse_tool_calls",
    "render_tool_calls",
    "tool_choice",
    "truncate_at_stop",
    "validate_json",
    "validate_tool_calls",
]


class ToolCallError(ValueError):
    """The surrogate's tool call (or structured output) does not parse or validate."""


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = field(default_factory=lambda: "call_" + uuid.uuid4().hex[:24])

    def to_dict(self) -> dict[str, Any]:
        """The form :class:`soma_engine.types.Message` keeps (``id``, ``name``, ``args``)."""
        return {"id": self.id, "name": self.name, "args": self.arguments}


@dataclass
class ParsedOutput:
    """Text outside the tool calls, the calls, and whether the text tried to call a tool."""

    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    attempted: bool = False


Mode = Literal["auto", "none", "required", "named"]


@dataclass(frozen=True)
class ToolChoice:
    mode: Mode = "auto"
    name: str | None = None


# ----------------------------------------------------------------------------- tool specs


def function_tools(tools: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The tools in OpenAI function format that a surrogate can call.

    Accepts OpenAI tool dicts and bare function dicts (``{"name", "parameters"}``). Raises
    :class:`ToolCallError` for a tool the surrogate cannot serve (a provider's built-in tool
    such as web search), so the caller routes the turn to the teacher.
    """
    out: list[dict[str, Any]] = []
    for t in tools or ():
        if not isinstance(t, Mapping):
            raise ToolCallError(f"tool {t!r} is not a JSON schema dict")
        if t.get("type") == "function" and isinstance(t.get("function"), Mapping):
            fn = dict(t["function"])
        elif "name" in t and "type" not in t:
            fn = dict(t)
        else:
            raise ToolCallError(f"tool of type {t.get('type')!r} is served by the teacher only")
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise ToolCallError("a tool has no name")
        fn.setdefault("parameters", {"type": "object", "properties": {}})
        out.append({"type": "function", "function": fn})
    return out


def tool_choice(choice: Any) -> ToolChoice:
    """Normalise the tool-choice spellings of OpenAI, Anthropic and LangChain."""
    if choice is None or choice is False or choice == "auto":
        return ToolChoice("auto")
    if choice is True or choice in ("any", "required"):
        return ToolChoice("required")
    if choice == "none":
        return ToolChoice("none")
    if isinstance(choice, str):
        return ToolChoice("named", choice)
    if isinstance(choice, Mapping):
        kind = choice.get("type")
        if kind in ("auto", "none"):
            return ToolChoice(kind)
        if kind in ("any", "required"):
            return ToolChoice("required")
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else choice.get("name")
        if isinstance(name, str) and name:
            return ToolChoice("named", name)
    raise ToolCallError(f"unsupported tool_choice {choice!r}")


# ----------------------------------------------------------------------------- rendering


def render_tool_calls(content: str, tool_calls: Sequence[Mapping[str, Any]]) -> str:
    """A reply with tool calls as text, in the Hermes/Qwen format ``<tool_call>{...}</tool_call>``.

    ``tool_calls`` items carry ``name`` and ``args`` (LangChain) or ``arguments``.
    """
    parts = [content.strip()] if content and content.strip() else []
    for call in tool_calls:
        args = call.get("args", call.get("arguments", {}))
        if isinstance(args, str):
            with contextlib.suppress(ValueError):
                args = json.loads(args)
        body = json.dumps({"name": call.get("name"), "arguments": args}, ensure_ascii=False)
        parts.append(f"<tool_call>\n{body}\n</tool_call>")
    return "\n".join(parts)


# ----------------------------------------------------------------------------- parsing

_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FUNCTION_TAG = re.compile(r"<function=([\w.\-]+)>\s*(.*?)\s*(?:</function>|$)", re.DOTALL)
_FENCE = re.compile(r"^```(?:json|JSON)?\s*(.*?)\s*```$", re.DOTALL)
_PREFIXES = ("[TOOL_CALLS]", "<|python_tag|>", "<tools>", "functools")


def _strip_fence(text: str) -> str:
    m = _FENCE.match(text.strip())
    return m.group(1) if m else text.strip()


def parse_json_text(text: str) -> Any:
    """JSON from a model's text: plain, or in a ```json fence. Raises :class:`ToolCallError`."""
    body = _strip_fence(text)
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ToolCallError(f"not valid JSON: {exc}") from None


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):
        raw = raw.strip() or "{}"
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ToolCallError(f"tool arguments are not valid JSON: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ToolCallError(f"tool arguments must be a JSON object, got {type(raw).__name__}")
    return raw


def _call_from_obj(obj: Any, forced: str | None) -> ToolCall:
    """One call from a decoded JSON value in any of the shapes we read."""
    if not isinstance(obj, dict):
        raise ToolCallError(f"a tool call must be a JSON object, got {type(obj).__name__}")
    if isinstance(obj.get("function"), dict):  # OpenAI {"type": "function", "function": {...}}
        fn = obj["function"]
        call = ToolCall(str(fn.get("name") or ""), _arguments(fn.get("arguments", fn.get("parameters"))))
        if isinstance(obj.get("id"), str) and obj["id"]:
            call.id = obj["id"]
        return call
    arg_key = next((k for k in ("arguments", "parameters", "args", "input") if k in obj), None)
    if isinstance(obj.get("name"), str) and arg_key is not None:
        return ToolCall(obj["name"], _arguments(obj[arg_key]))
    if forced is not None:  # one forced tool: a bare object is its arguments
        return ToolCall(forced, obj)
    if isinstance(obj.get("name"), str) and len(obj) == 1:
        return ToolCall(obj["name"], {})
    raise ToolCallError("JSON output is not a tool call (expected 'name' and 'arguments')")


def _calls_from_value(value: Any, forced: str | None) -> list[ToolCall]:
    if isinstance(value, dict) and isinstance(value.get("tool_calls"), list):
        value = value["tool_calls"]
    if isinstance(value, list):
        if not value:
            raise ToolCallError("empty list of tool calls")
        return [_call_from_obj(v, forced) for v in value]
    return [_call_from_obj(value, forced)]


def parse_tool_calls(text: str, *, forced: str | None = None) -> ParsedOutput:
    """Read the tool calls in a surrogate's text.

    ``forced`` names the one tool the caller must call (tool choice or structured output):
    a bare JSON object is then read as that tool's arguments. Text with no tool-call
    markers and not starting with ``{``/``[`` is plain content (``attempted=False``).
    Raises :class:`ToolCallError` when a call was attempted but is malformed.
    """
    stripped = text.strip()
    if "<tool_call>" in stripped:
        calls: list[ToolCall] = []
        for body in _TAGGED.findall(stripped):
            calls.extend(_calls_from_value(_decode(body), forced))
        if not calls:
            raise ToolCallError("empty <tool_call> block")
        content = _TAGGED.sub("", stripped).replace("</tool_call>", "").strip()
        return ParsedOutput(content, calls, True)
    if "<function=" in stripped:
        calls = [ToolCall(name, _arguments(body)) for name, body in _FUNCTION_TAG.findall(stripped)]
        if not calls:
            raise ToolCallError("malformed <function=...> call")
        return ParsedOutput(_FUNCTION_TAG.sub("", stripped).strip(), calls, True)
    for prefix in _PREFIXES:
        if stripped.startswith(prefix):
            return ParsedOutput("", _calls_from_value(_decode(stripped[len(prefix) :]), forced), True)
    body = _strip_fence(stripped)
    if body.startswith(("{", "[")):
        return ParsedOutput("", _calls_from_value(_decode(body), forced), True)
    return ParsedOutput(stripped, [], False)


def _decode(body: str) -> Any:
    body = _strip_fence(body.strip())
    try:
        return json.loads(body)
    except ValueError:
        pass
    # Models often add prose after the JSON: take the first complete value.
    try:
        value, _ = json.JSONDecoder().raw_decode(body)
        return value
    except ValueError as exc:
        raise ToolCallError(f"tool call is not valid JSON: {exc}") from None


# ----------------------------------------------------------------------------- validation


def validate_tool_calls(
    parsed: ParsedOutput,
    tools: Sequence[Mapping[str, Any]],
    choice: ToolChoice | Any = None,
    *,
    parallel: bool = True,
) -> None:
    """Check names, arguments (JSON schema) and the tool choice. Raises :class:`ToolCallError`."""
    choice = choice if isinstance(choice, ToolChoice) else tool_choice(choice)
    specs = {t["function"]["name"]: t["function"] for t in function_tools(tools)}
    calls = parsed.tool_calls
    if choice.mode == "none" and (calls or parsed.attempted):
        raise ToolCallError("tool_choice is 'none' but the output calls a tool")
    if choice.mode in ("required", "named") and not calls:
        raise ToolCallError("a tool call is required but the output has none")
    if not parallel and len(calls) > 1:
        raise ToolCallError(f"{len(calls)} tool calls but parallel tool calls are off")
    for call in calls:
        if choice.mode == "named" and call.name != choice.name:
            raise ToolCallError(f"tool {choice.name!r} is required, the output calls {call.name!r}")
        spec = specs.get(call.name)
        if spec is None:
            raise ToolCallError(f"unknown tool {call.name!r}; bound tools: {', '.join(specs) or 'none'}")
        try:
            validate_json(call.arguments, spec.get("parameters") or {})
        except ToolCallError as exc:
            raise ToolCallError(f"arguments of {call.name!r}: {exc}") from None


def check_tool_output(
    text: str,
    tools: Sequence[Mapping[str, Any]],
    choice: Any = None,
    *,
    parallel: bool = True,
) -> ParsedOutput:
    """Parse and validate a surrogate answer when tools are bound; raise :class:`ToolCallError`."""
    norm = choice if isinstance(choice, ToolChoice) else tool_choice(choice)
    names = [t["function"]["name"] for t in function_tools(tools)]
    forced = norm.name if norm.mode == "named" else (names[0] if norm.mode == "required" and len(names) == 1 else None)
    parsed = parse_tool_calls(text, forced=forced)
    validate_tool_calls(parsed, tools, norm, parallel=parallel)
    return parsed


def check_json_output(text: str, schema: Mapping[str, Any] | None = None) -> Any:
    """JSON mode: the text must be one JSON object (valid against ``schema`` when given)."""
    value = parse_json_text(text)
    if not isinstance(value, dict):
        raise ToolCallError(f"JSON mode needs a JSON object, got {type(value).__name__}")
    if schema:
        validate_json(value, schema)
    return value


def validate_json(value: Any, schema: Mapping[str, Any]) -> None:
    """Validate against a JSON schema: ``jsonschema`` when installed, else a built-in subset
    (type, required, properties, additionalProperties, enum, const, items, anyOf/oneOf/allOf,
    local ``$ref``). Raises :class:`ToolCallError`."""
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - jsonschema ships with most stacks
        _validate(value, schema, schema, "$")
        return
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        error = jsonschema.exceptions.best_match(cls(schema).iter_errors(value))
    except jsonschema.exceptions.SchemaError:
        _validate(value, schema, schema, "$")
        return
    if error is not None:
        where = "$" + "".join(f"[{p!r}]" for p in error.absolute_path)
        raise ToolCallError(f"{where}: {error.message}")


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
}


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "integer":
        if isinstance(value, float):
            return value.is_integer()
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES.get(kind, (object,)))


def _resolve(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        if not part:
            continue
        node = node.get(part) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def _validate(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any], path: str) -> None:
    if not isinstance(schema, Mapping):
        return
    if "$ref" in schema:
        _validate(value, _resolve(schema["$ref"], root), root, path)
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_type_ok(value, k) for k in kinds):
            raise ToolCallError(f"{path}: expected {' or '.join(kinds)}, got {type(value).__name__}")
    if "enum" in schema and value not in schema["enum"]:
        raise ToolCallError(f"{path}: {value!r} is not one of {schema['enum']!r}")
    if "const" in schema and value != schema["const"]:
        raise ToolCallError(f"{path}: expected {schema['const']!r}")
    for sub in schema.get("allOf") or ():
        _validate(value, sub, root, path)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if options:
            errors = []
            for sub in options:
                try:
                    _validate(value, sub, root, path)
                    break
                except ToolCallError as exc:
                    errors.append(str(exc))
            else:
                raise ToolCallError(f"{path}: matches none of {key}: {'; '.join(errors)}")
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name in schema.get("required") or ():
            if name not in value:
                raise ToolCallError(f"{path}: missing required property {name!r}")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                _validate(item, props[name], root, f"{path}.{name}")
            elif extra is False:
                raise ToolCallError(f"{path}: unexpected property {name!r}")
            elif isinstance(extra, Mapping):
                _validate(item, extra, root, f"{path}.{name}")
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            _validate(item, schema["items"], root, f"{path}[{i}]")


# ----------------------------------------------------------------------------- stop sequences


def truncate_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """``text`` up to the first occurrence of any stop sequence."""
    if not stop:
        return text
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]


class StopFilter:
    """Streams text pieces up to the first stop sequence, holding back a tail that could be
    the start of one. Also drops leading whitespace and holds trailing whitespace until more
    text follows, so the streamed text equals the (stripped) final text."""

    def __init__(self, stop: Sequence[str] | None = None) -> None:
        self.stop = [s for s in (stop or ()) if s]
        self.text = ""  # everything received
        self.sent = 0  # characters of the visible text already emitted
        self.stopped = False

    def _visible(self) -> str:
        return truncate_at_stop(self.text, self.stop).lstrip()

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        self.text += piece
        visible = self._visible()
        if self.stop and len(visible) < len(self.text.lstrip()):
            self.stopped = True
            return self._emit(visible.rstrip())
        hold = max((_overlap(visible, s) for s in self.stop), default=0)
        ready = visible[: len(visible) - hold] if hold else visible
        return self._emit(ready.rstrip())

    def flush(self) -> str:
        return "" if self.stopped else self._emit(self._visible().rstrip())

    def _emit(self, upto: str) -> str:
        if len(upto) <= self.sent:
            return ""
        piece, self.sent = upto[self.sent :], len(upto)
        return piece


def _overlap(text: str, stop: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``stop``."""
    for n in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:n]):
            return n
    return 0
