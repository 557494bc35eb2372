"""Drift: a slow Ornstein-Uhlenbeck walk on the prior, without feedback.

    z_{t+1} = rho z_t + sqrt(1 - rho^2) eps_t,   rho = exp(-dt / drift.correlation_seconds)

Its stationary law is the prior N(0, I) itself, so however long it runs it stays
where the generator makes portraits (|z| ~ sqrt(nz)); the default time constant
(20 s) is four times the feedback walk's: faces dissolve slowly into others. The
encoder is never read. Novelty's candidate choice and escape work as in feedback.
"""
from __future__ import annotations

from passersby.generator.traversal.feedback import FeedbackTraversal


class DriftTraversal(FeedbackTraversal):
    name = "drift"

    @property
    def correlation_seconds(self) -> float:
        return self.cfg.drift.correlation_seconds

    @property
    def beta(self) -> float:
        return 0.0
