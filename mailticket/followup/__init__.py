"""Time-driven work: business calendar, follow-up clocks (pure), the sweep that acts on them."""
