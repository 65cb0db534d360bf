"""``SomaChatModel.with_structured_output``: the schema bound as a forced tool call or as a JSON
mode, and the parser that reads the answer (LangChain's own parsers)."""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass


def structured_output(
    model: BaseChatModel,
    schema: dict[str, Any] | type | None,
    method: str,
    include_raw: bool,
    strict: bool | None,
    kwargs: dict[str, Any],
) -> Runnable:
    """``model`` (a SomaChatModel) bound for ``method`` and piped into the parser of ``schema``."""
    if kwargs:
        raise ValueError(f"Received unsupported arguments {kwargs}")
    if method not in ("function_calling", "json_schema", "json_mode"):
        raise ValueError(f"method must be 'function_calling', 'json_schema' or 'json_mode', not {method!r}")
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    if method in ("json_mode", "json_schema"):
        if schema is None and method == "json_schema":
            raise ValueError("schema must be given when method is 'json_schema'")
        json_schema = convert_to_json_schema(schema) if schema is not None else None
        bound: dict[str, Any] = {"soma_json_mode": {"schema": json_schema, "method": method, "strict": strict}}
        if schema is not None:
            bound["ls_structured_output_format"] = {
                "kwargs": {"method": method, "strict": strict},
                "schema": schema,
            }
        llm = model.bind(**bound)
        parser: Runnable = (
            PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()  # type: ignore[arg-type]
        )
    else:
        if schema is None:
            raise ValueError("schema must be given when method is not 'json_mode'")
        tool = convert_to_openai_tool(schema, strict=strict)
        name = tool["function"]["name"]
        bind_kwargs: dict[str, Any] = {}
        if strict is not None:
            bind_kwargs["strict"] = strict
        llm = model.bind_tools(
            [schema],
            tool_choice=name,
            ls_structured_output_format={"kwargs": {"method": method, "strict": strict}, "schema": schema},
            **bind_kwargs,
        )
        parser = (
            PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
            if is_pydantic
            else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
        )
    if include_raw:
        parser_assign = RunnablePassthrough.assign(parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        parser_none = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parser_assign.with_fallbacks([parser_none], exception_key="parsing_error")
    return llm | parser
