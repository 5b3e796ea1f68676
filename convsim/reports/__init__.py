"""Human-readable reports (terminal and self-contained HTML)."""

from .drift import drift_html
from .replay import divergence_counts, replay_html

__all__ = ["divergence_counts", "drift_html", "replay_html"]
