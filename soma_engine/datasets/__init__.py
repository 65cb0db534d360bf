"""Conversation data sets for benchmarks and the demo (data loading only, no engine logic)."""
