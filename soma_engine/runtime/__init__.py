"""Runtime: the surrogate G with its session adapters (one model worker owns it), generation,
the sentence encoder φ and the resolution of the bundled offline models."""
