"""Services of the tutoring core, one module per area: `scheduling` (next item, decision log, policy versions)."""
