"""One router per file: chat, conversations, feedback, knowledge (search and documents), admin, health."""
