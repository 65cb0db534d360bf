"""Drift (paper Sec. 3.3): the locality statistic x_t, the session's detector, the drift monitor
and the audits that roll a serving session back to the teacher."""
