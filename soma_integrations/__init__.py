"""Framework integrations of the SOMA engine.

``soma_integrations.langchain.SomaChatModel`` wraps any LangChain chat model;
imports are per framework, so installing one framework is enough.
"""

__all__: list[str] = []
