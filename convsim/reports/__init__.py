"""Human-readable reports (terminal and self-contained HTML)."""

from .replay import divergence_counts, replay_html

__all__ = ["divergence_counts", "replay_html"]
