"""Acceptance (paper Sec. 4.1, Lemma 4.1, Theorem 4.2, Corollary 4.3): the Gap and its bounds
(``bounds``), and the decision rules (``gate``)."""
