"""Public helpers for tests, benchmarks and demos (as transformers keeps ``testing_utils``):
tiny in-process models and stand-in teachers."""

from .models import CHAT_TEMPLATE, CORPUS, build_tiny_model, build_tokenizer, make_visible_only, save_tiny_model
from .teachers import ReplayTeacher, ScriptedTeacher, teacher_only_tokens, word_count

__all__ = [
    "CHAT_TEMPLATE",
    "CORPUS",
    "ReplayTeacher",
    "ScriptedTeacher",
    "build_tiny_model",
    "build_tokenizer",
    "make_visible_only",
    "save_tiny_model",
    "teacher_only_tokens",
    "word_count",
]
