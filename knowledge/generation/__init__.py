"""Text generators behind one interface (:class:`knowledge.generation.base.ChatGenerator`)."""
