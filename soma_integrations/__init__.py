"""Framework integrations of the SOMA engine.

``soma_integrations.langchain.SomaChatModel`` wraps any LangChain chat model and
``soma_integrations.llama_index.SomaLLM`` any LlamaIndex LLM. Each needs its framework, an
extra of the package (``pip install "soma-middleware[langchain]"`` or ``[llama-index]``);
imports are per framework, so installing one framework is enough.
"""

__all__: list[str] = []
