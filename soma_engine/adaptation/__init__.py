"""Adaptation (paper Sec. 3.2–3.3): soft-prompt mining (Eq. 1–3), LoRA distillation (Eq. 4),
the strategies, the time budget, and the jobs that run them (inline, background or queued)."""
