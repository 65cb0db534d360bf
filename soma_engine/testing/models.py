"""Tiny, randomly initialised causal LMs built in-process, for tests and CPU benchmarks.

A byte-level BPE tokenizer is trained with ``tokenizers`` on a small text and given a
ChatML chat template, so the real loading, templating, LoRA and generation code runs on a
model of a few hundred thousand parameters in milliseconds. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CORPUS = """\
The negotiation for the bicycle started at nine hundred dollars and the buyer offered seven.
Patients describe their symptoms, the doctor asks about duration, fever, pain and medication.
To solve the equation subtract three from both sides and divide by two to isolate x.
Our trip to Lisbon includes trams, pastries, museums, the river front and a day in Sintra.
Review this Python function: it loops over the list, appends squares and returns the result.
Arr matey, the pirate captain said, hoist the sails and steer towards the golden island!
Hello, how are you today? I am fine, thank you. What would you like to talk about?
Yes. No. Maybe. Thanks! Sure, here is the answer you asked for, step by step.
Weather, cooking, football, music, history, chemistry, gardening and astronomy are topics.
0 1 2 3 4 5 6 7 8 9 10 100 1000 + - * / = ( ) [ ] { } : ; , . ? ! ' " _ # @ $ % &
"""


def build_tokenizer(vocab_size: int = 512):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS.splitlines() * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(
    arch: str = "llama",
    vocab_size: int = 512,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
    visible_only: bool = False,
):
    """A tiny causal LM and its tokenizer (``arch``: "llama" or "qwen2").

    ``visible_only``: greedy output is always visible plain text (see :func:`make_visible_only`),
    for tests and demos that need the surrogate's answer to be a usable turn."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    tokenizer = build_tokenizer(vocab_size)
    cls = {"llama": LlamaConfig, "qwen2": Qwen2Config}[arch]
    config = cls(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if visible_only:
        make_visible_only(model, tokenizer)
    return model, tokenizer


def make_visible_only(model, tokenizer, min_new_tokens: int = 4) -> None:
    """Make a (random) model's greedy output always visible plain text: whitespace-only
    tokens, special tokens other than EOS and tokens opening ``{ [ < ``` are suppressed, and
    EOS is held back for ``min_new_tokens`` tokens. A random model otherwise often answers only
    newlines, which the engine rightly treats as a failed turn, or text that looks like a tool
    call."""
    eos = tokenizer.eos_token_id
    suppress = []
    for i in range(len(tokenizer)):
        piece = tokenizer.decode([i])
        if i != eos and (not piece.strip() or piece.lstrip()[0] in "{[<`"):
            suppress.append(i)
    model.generation_config.suppress_tokens = suppress
    model.generation_config.min_new_tokens = min_new_tokens


def save_tiny_model(path: str | Path, **kwargs) -> Path:
    """Write a tiny model + tokenizer folder that ``SurrogateRuntime`` loads like any HF path."""
    path = Path(path)
    model, tokenizer = build_tiny_model(**kwargs)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
